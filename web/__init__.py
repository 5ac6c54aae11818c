"""The worker's web views: health, table inspection, the dashboard, metrics.

The modules that declare pages import ``app`` and are found by Faust's autodiscovery; the
others (paging, tokens, merging summaries) are plain code that commands and tests import alone.
"""

"""The worker's web views beside health (``app.py``): table inspection, the dashboard, metrics.

``web.views`` registers them; the other modules without Faust (paging, tokens, merging
summaries) are plain code that commands and tests import alone.
"""

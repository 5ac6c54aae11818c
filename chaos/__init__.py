"""A bounded fault campaign against the real pipeline: ``python -m chaos [--long] [--seed N]``.

See chaos/campaign.py for the scenarios and how files are judged.
"""

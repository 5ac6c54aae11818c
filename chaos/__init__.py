"""A bounded fault campaign against the real pipeline: ``python -m chaos [--long] [--seed N]``.

chaos/campaign.py runs the scenarios (chaos/scenarios/, one module per family of faults) on one
stack; chaos/verdict.py judges every file they sent.
"""

"""Faust command-line commands (``faust -A app COMMAND``), registered by importing them from ``app.py``."""

"""Faust command-line commands (``faust -A app COMMAND``), found by the app's autodiscovery."""

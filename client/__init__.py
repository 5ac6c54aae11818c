"""The upload side of filestream: finds local files, splits them into chunk records and produces them.

``faust -A app upload`` (``commands/upload.py``) is the entry point; everything here
is usable without Faust.
"""

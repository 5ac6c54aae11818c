"""User and built-in processing of completed files."""

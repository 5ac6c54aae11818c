"""The one base of every error filestream raises on purpose, so a caller can tell them from bugs.

Each concern has a small family below it, defined where the concern lives: settings
(``settings.SettingsError``), records on the wire (``models``), S3 (``storage.s3.S3Error``),
the upload and download clients (``client``), processors (``processors``).
"""


class FilestreamError(Exception):
    """Something filestream refuses or cannot do, with a message that says what and why."""

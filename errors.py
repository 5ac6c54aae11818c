"""The one base of every error filestream raises on purpose, so a caller can tell them from bugs.

Below it, one small family per concern; a member keeps the standard base callers catch it by
(``ChunkDecodeError`` is also a ``ValueError``, ``FileChangedError`` an ``OSError``):

- ``RecordError``: a record on the wire that is not what it claims (``models``: chunks, their
  header bounds, file events);
- ``IdentityError``: a name that cannot be a file's identity, its place in the output directory
  or its S3 key (``models.identity``, ``storage.local``, ``storage.objects``);
- ``ConfigurationError``: settings (``settings.SettingsError``) and the configuration files
  they name (``client.openmsistream_config``);
- ``storage.s3.S3Error``: S3 calls and uploads that did not succeed, defined with them;
- ``TransferError``: a file's transfer to S3, its state machine and driver (``tables``);
- ``ClientSideError``: the upload, download and status clients (``client``);
- ``ProcessorError``: processors, their registration and the content extractors (``processors``);
- ``DevStackError``: the embedded development stack (``devstack``).

A concern with a single error (``web.paging.QueryError``, ``bench.common.Stall``) derives from
``FilestreamError`` directly.  tests/test_errors.py fails on an exception class of the project's
that derives from none of them.
"""


class FilestreamError(Exception):
    """Something filestream refuses or cannot do, with a message that says what and why."""


class RecordError(FilestreamError):
    """A record on the wire that is not what it claims to be; it is rejected, the worker goes on."""


class IdentityError(FilestreamError):
    """A name that cannot be a file's identity, its place in the output directory or its S3 key."""


class ConfigurationError(FilestreamError):
    """A setting, or a configuration file a setting names, that cannot be used."""


class TransferError(FilestreamError):
    """A file's transfer to S3 that cannot go on as asked."""


class ClientSideError(FilestreamError):
    """What the upload, download and status clients refuse or cannot reach (not botocore's ClientError)."""


class ProcessorError(FilestreamError):
    """A processor that cannot be registered or run, or content it cannot read."""


class DevStackError(FilestreamError):
    """The embedded development stack cannot start what it was asked to."""

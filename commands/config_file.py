"""``--config FILE`` on every filestream command: an OpenMSIStream configuration file.

The value is read by app.py (``settings.config_file_argument``) when ``faust -A app`` loads the
app, before click parses the command line: the app's own clients are built from it.  Here the
option only declares it, so click accepts it and ``--help`` lists it.
"""

from __future__ import annotations

from faust.cli import option

config_option = option(
    "--config",
    metavar="FILE",
    expose_value=False,
    help="OpenMSIStream configuration file: its broker, security and S3 values apply where no "
    "FILESTREAM_* variable is set (as FILESTREAM_CONFIG).",
)

"""Where settings come from besides the environment: an OpenMSIStream configuration file, files holding passwords."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from client.openmsistream_config import ConfigFileError, read_openmsistream_config
from settings.values import PREFIX, SettingsError

log = logging.getLogger(__name__)


def with_config_file(
    path: Path, environ: Mapping[str, str], process_environment: bool
) -> tuple[dict[str, str], dict[str, str]]:
    """``environ`` with the config file's values wherever it sets none; and where each of those came from."""
    try:
        found = read_openmsistream_config(path, environ)
    except ConfigFileError as exc:
        raise SettingsError(f"{PREFIX}CONFIG / --config: {exc}") from None
    from_file = {PREFIX + name.upper(): value for name, value in found.settings.items()}
    origins = {PREFIX + name.upper(): origin for name, origin in found.origins.items() if name in found.settings}
    # A password given either way in the environment replaces the file's.
    if environ.get(f"{PREFIX}SASL_PASSWORD") or environ.get(f"{PREFIX}SASL_PASSWORD_FILE"):
        from_file.pop(f"{PREFIX}SASL_PASSWORD", None)
    applied = {variable: value for variable, value in from_file.items() if not environ.get(variable)}
    aws = found.aws_applicable(environ)
    if found.not_understood:
        log.warning("%s: not understood, not used: %s", path, ", ".join(found.not_understood))
    if found.handled_by_filestream:
        log.info("%s: set by filestream itself, not taken: %s", path, ", ".join(found.handled_by_filestream))
    overridden = sorted((set(from_file) - set(applied)) | (set(found.aws) - set(aws)))
    if overridden:
        log.info("%s: the environment sets %s, which win over the file", path, ", ".join(overridden))
    merged = {**environ, **applied, f"{PREFIX}CONFIG": str(path)}
    if process_environment:
        os.environ.update(aws)  # boto3 reads these itself, from the process environment
    else:
        merged.update(aws)
    return merged, {variable: origins[variable] for variable in applied}


def config_file_argument(argv: Sequence[str]) -> str | None:
    """The value of ``--config FILE`` / ``--config=FILE`` on a command line, if any.

    The commands run inside the app, which ``faust -A app`` builds from the settings before
    click parses the command's options; so the app takes the file from its command line itself.
    """
    for index, argument in enumerate(argv):
        if argument == "--":
            break
        if argument == "--config" and index + 1 < len(argv):
            return argv[index + 1]
        if argument.startswith("--config="):
            return argument.removeprefix("--config=")
    return None


def read_secret_file(path: Path, variable: str) -> str:
    """A password kept in a file, as editors save it: one trailing newline is not part of it."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{variable}: cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    password = text.removesuffix("\n").removesuffix("\r")
    if not password:
        raise SettingsError(f"{variable}: {path} is empty")
    return password

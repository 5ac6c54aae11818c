"""The base of filestream's Faust commands: they log as the workers do (``FILESTREAM_LOG_FORMAT``)."""

from __future__ import annotations

from typing import ClassVar

from faust.cli import AppCommand
from mode import Worker


class Command(AppCommand):
    # A base, not a command: Faust registers every concrete subclass of AppCommand as one.
    abstract: ClassVar[bool] = True

    def on_worker_created(self, worker: Worker) -> None:
        # `faust worker` runs a faust.Worker, which applies app.conf.logging_config; every other
        # command runs in a plain mode.Worker, which would ignore it.
        if self.app.conf.logging_config:
            worker.logging_config = dict(self.app.conf.logging_config)

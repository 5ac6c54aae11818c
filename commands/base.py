"""The base of filestream's Faust commands: they log as the workers do (``FILESTREAM_LOG_FORMAT``)."""

from __future__ import annotations

from faust.cli import AppCommand
from mode import Worker


class Command(AppCommand):
    def on_worker_created(self, worker: Worker) -> None:
        # `faust worker` runs a faust.Worker, which applies app.conf.logging_config; every other
        # command runs in a plain mode.Worker, which would ignore it.
        if self.app.conf.logging_config:
            worker.logging_config = dict(self.app.conf.logging_config)

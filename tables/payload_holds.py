"""Which downstream consumers still read a completed generation's chunk payloads from the table.

The reassembly agent keeps a completed generation's payloads while any holder applies,
and names their epoch in the completed-file event (``FileEvent.payload_epoch``); each
holder reads them with ``payload_key(file_key, epoch, index)`` and releases them once it
is finished with that generation.  The payloads go when every holder has released them.

The S3 transfer is the only holder so far, so its release deletes them
(``agents/s3_transfer.py``).  A second holder comes with a per-generation record of the
holders still reading (a table keyed like the payloads), and the deletion moves to
whichever release empties it.
"""

from __future__ import annotations

from settings import Settings

S3_TRANSFER = "s3-transfer"


def payload_holders(settings: Settings) -> frozenset[str]:
    return frozenset({S3_TRANSFER}) if settings.s3_enabled else frozenset()

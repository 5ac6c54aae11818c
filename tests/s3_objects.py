"""Objects stored in S3 as the transfer agent stores them, for the storage and download tests.

The agent uploads a spool file (storage/s3_upload.upload_file) with its settings' part
layout and its part threads, against the CRC32 the file was verified with; so does this.
"""

from __future__ import annotations

import tempfile
import zlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from botocore.client import BaseClient

from settings import Settings
from settings.values import S3_MIN_PART_SIZE
from storage.objects import crc32_base64
from storage.s3_upload import PartLayout, UploadResult, upload_file

# Parts of S3's (and moto's) smallest size: multipart uploads in the tests stay small.
SMALLEST_PARTS = PartLayout(S3_MIN_PART_SIZE, S3_MIN_PART_SIZE)


def agent_layout(settings: Settings) -> PartLayout:
    """The part layout of the transfer agent running with ``settings``."""
    return PartLayout(settings.s3_multipart_threshold, settings.s3_part_size)


def store_object(
    client: BaseClient,
    bucket: str,
    key: str,
    content: bytes | Iterable[bytes],
    metadata: dict[str, str],
    *,
    layout: PartLayout,
    threads: int = 4,
) -> UploadResult:
    """Write ``content`` (bytes, or pieces of them, never all held at once) to a temp file and upload it."""
    pieces = [content] if isinstance(content, bytes) else content
    with tempfile.TemporaryDirectory(prefix="s3-object-") as directory:
        spooled = Path(directory) / "spooled"
        crc = 0
        size = 0
        with spooled.open("wb") as file:
            for piece in pieces:
                file.write(piece)
                crc = zlib.crc32(piece, crc)
                size += len(piece)
        with ThreadPoolExecutor(threads, thread_name_prefix="test-s3-part") as part_pool:
            return upload_file(
                client,
                bucket,
                key,
                spooled,
                size,
                metadata,
                layout=layout,
                part_pool=part_pool,
                expected_checksum=crc32_base64(crc),
            )

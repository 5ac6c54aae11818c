"""The C allocator's setting that keeps a worker's memory bounded by what it holds, not by what it once held.

Every chunk record is a buffer of up to a chunk (1 MiB by default), allocated by aiokafka's
fetcher thread and freed by the event loop or an S3 thread.  glibc's malloc serves buffers
above its mmap threshold (128 KiB at start) from mmap and returns them to the system when
freed, but raises the threshold to the size of each such buffer freed (up to 32 MiB), after
which chunk buffers come from its per-thread heaps, whose freed memory it keeps.  Measured
with ``python -m bench.compare --broker kafka --only filestream`` (541 files, 737 MB): the
worker's peak RSS 443 MB with glibc's default, 353 MB with the threshold fixed at 256 KiB
(``MALLOC_MMAP_THRESHOLD_``), same throughput.  Fixing it from Python (``mallopt``) works
like the environment variable and also stops the adjustment; the variable, when set, wins.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
MMAP_THRESHOLD = 256 * 1024  # a chunk and most buffers of its size go to mmap; small objects stay on the heaps


def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes; False where the C library is not glibc or the user chose."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    libc = ctypes.CDLL(name)
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None or not hasattr(libc, "gnu_get_libc_version"):  # musl and macOS have other allocators
        return False
    if mallopt(M_MMAP_THRESHOLD, threshold) != 1:
        log.warning("glibc refused an mmap threshold of %d bytes", threshold)
        return False
    return True

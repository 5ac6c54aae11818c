"""The C allocator's setting that keeps a worker's memory bounded by what it holds, not by what it once held.

Every chunk record is a buffer of up to a chunk (1 MiB by default), allocated by aiokafka's
fetcher thread and freed by the event loop or an S3 thread.  glibc's malloc serves buffers
above its mmap threshold (128 KiB at start) from mmap and returns them to the system when
freed, but raises the threshold to the size of each such buffer freed (up to 32 MiB), after
which even fetch responses of many megabytes come from its per-thread heaps, whose freed
memory it keeps.  Fixing the threshold stops that adjustment (``mallopt`` works like the
``MALLOC_MMAP_THRESHOLD_`` variable, which, when set, wins).

Where it is fixed is a trade between page faults and memory.  Every mmapped buffer is
faulted in page by page and unmapped again when freed, so a threshold below a record sends
each socket read, record batch and record through fresh pages: measured with the topic
filled first and one worker draining it (541 files, 737 MB, Apache Kafka, Faust's stream
buffer at 64 events), a threshold of 256 KiB cost 1.6-2.0 million page faults and 27.6-29.1
CPU-seconds at 215-221 MB peak RSS; just above the largest record (4 MiB + 64 KiB here)
0.40-0.53 million faults and 23.5-24.5 CPU-seconds at 285-324 MB; 32 MiB, 0.36-0.52 million
faults, 22.9-24.5 CPU-seconds, 297-335 MB.  So: just above the largest record.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
# glibc's ceiling for the threshold on 64-bit systems (HEAP_MAX_SIZE / 2); mallopt refuses more.
MAX_MMAP_THRESHOLD = 32 * 1024**2
HEADROOM = 64 * 1024  # a record's header and Python's object header on top of its payload


def threshold_for(largest_record: int) -> int:
    """Records and the buffers of their size come from the heaps and are reused; fetch responses are mmapped."""
    return min(largest_record + HEADROOM, MAX_MMAP_THRESHOLD)


def fix_mmap_threshold(threshold: int) -> bool:
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

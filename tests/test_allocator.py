"""The mmap threshold stays fixed: a buffer above it freed does not send the next one of its size to the heaps."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import allocator

PROJECT = Path(__file__).resolve().parents[1]

# In a fresh interpreter, whose allocator no test has tuned yet.  Prints the bytes glibc has
# in mmapped blocks while a second 8 MiB buffer is held, after a first one was freed (the
# threshold fixed as for 1 MiB chunks, whose largest record is 4 MiB).
PROBE = """
import ctypes, sys
sys.path.insert(0, {project!r})
import allocator

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
fixed = allocator.fix_mmap_threshold(allocator.threshold_for(4 << 20)) if sys.argv[1] == "fix" else False
first = bytearray(8 << 20)
del first
second = bytearray(8 << 20)
print(fixed, libc.mallinfo2().hblkhd)
"""


def mmapped_bytes_holding_a_second_buffer(mode: str) -> tuple[bool, int]:
    argv = [sys.executable, "-c", PROBE.format(project=str(PROJECT)), mode]
    answer = subprocess.run(argv, capture_output=True, text=True, check=True, env={"PATH": ""}).stdout.split()
    return answer[0] == "True", int(answer[1])


def test_with_the_threshold_fixed_a_freed_big_buffer_leaves_the_next_one_mmapped():
    fixed, mmapped = mmapped_bytes_holding_a_second_buffer("fix")
    assert fixed
    assert mmapped >= 8 << 20
    # glibc's own rule: the first buffer's free raised the threshold, the second came from a heap.
    _, default_mmapped = mmapped_bytes_holding_a_second_buffer("default")
    assert default_mmapped < 8 << 20


def test_the_threshold_sits_just_above_the_largest_record_within_glibcs_ceiling():
    assert allocator.threshold_for(4 << 20) == (4 << 20) + allocator.HEADROOM
    assert allocator.threshold_for(1 << 30) == allocator.MAX_MMAP_THRESHOLD

"""py-spy on the filestream worker (``--profile``), and where its time goes."""

from __future__ import annotations

import logging
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from bench.common import format_table
from devstack.worker import PROJECT_ROOT

log = logging.getLogger(__name__)


class Profiler:
    """py-spy sampling one process into a raw (collapsed stacks) file, where py-spy is installed."""

    def __init__(self, popen: subprocess.Popen, output: Path) -> None:
        self.popen = popen
        self.output = output

    @classmethod
    def attach(cls, pid: int, output: Path, *, gil_only: bool = False) -> Profiler | None:
        """``gil_only``: sample only the thread holding the GIL, so waits in C calls do not count as work."""
        py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
        if py_spy is None:
            log.warning("py-spy is not installed (pip install py-spy): running without a profile")
            return None
        argv = [
            py_spy,
            "record",
            "-p",
            str(pid),
            "-f",
            "raw",
            "-o",
            str(output),
            "--nolineno",
            "--threads",
            "-r",
            "100",
            *(["--gil"] if gil_only else []),
        ]
        popen = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        return cls(popen, output)

    def stop(self) -> None:
        self.popen.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
        self.popen.wait(60)


# Leaf frames of threads that wait (the event loop in epoll, idle executor threads): py-spy
# counts them as active because they wait inside C calls it cannot tell from work.
WAITING_FRAMES = ("EpollSelector.select (selectors.py)", "_worker (concurrent/futures/thread.py)")


def _frame_module(frame: str) -> str:
    """``"Store._set (faust/stores/rocksdb.py)"`` → ``"faust"``."""
    return frame.rpartition("(")[2].split("/")[0].removesuffix(")")


def profile_report(raw: Path, top: int = 15) -> str:
    """Busy seconds per thread; where the event loop thread spends them; filestream's functions over all threads.

    The event loop runs every agent one event at a time, so its busy time bounds the worker;
    the S3 and file threads mostly wait for I/O (py-spy counts a blocking read as busy).
    """
    project_modules = {
        path.stem for path in PROJECT_ROOT.iterdir() if path.suffix == ".py" or (path / "__init__.py").exists()
    }
    threads: Counter[str] = Counter()
    event_loop: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count, (thread, *frames) = int(count_text), stack.split(";")
        if not frames or frames[-1] in WAITING_FRAMES:
            continue
        name = thread.partition(": ")[2]  # "thread (4711): MainThread"
        threads[name] += count
        if name == "MainThread":
            event_loop[frames[-1]] += count
        for frame in set(frames):
            if _frame_module(frame) in project_modules:
                inclusive[frame] += count
    if not threads:
        return "no busy samples"

    def shares(counter: Counter[str], of: int) -> list[tuple[str, str]]:
        return [(frame[:110], f"{100 * count / of:5.1f} %") for frame, count in counter.most_common(top)]

    return "\n\n".join(
        [
            format_table(
                ["thread", "busy (py-spy, 100 samples/s)"],
                [(name, f"{count / 100:.1f} s") for name, count in threads.most_common()],
            ),
            format_table(
                ["event loop thread: function at the top of the stack", "of its busy time"],
                shares(event_loop, threads["MainThread"]),
            ),
            format_table(
                ["filestream's own functions, all threads (inclusive)", "of all busy time"],
                shares(inclusive, sum(threads.values())),
            ),
        ]
    )

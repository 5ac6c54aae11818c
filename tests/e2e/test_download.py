"""Download from the real moto S3 server.

Byte-exact files, refused corruption, interruptions, overwrite, the command.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import zlib
from collections.abc import Iterable
from pathlib import Path

import pytest
from botocore.client import BaseClient
from botocore.response import StreamingBody

from client.download_plan import DownloadPlanError, Selection, plan_downloads
from client.downloader import DownloadReport, DownloadRequest, LogProgress, describe_objects, execute, run_download
from devstack.processes import child_env
from devstack.worker import FAUST, PROJECT_ROOT
from settings import Settings, load_settings
from storage.local import UnsafeDestination
from storage.objects import crc32_base64, object_key, object_metadata
from storage.s3 import ensure_bucket, make_s3_client
from tests.s3_objects import agent_layout, store_object

pytestmark = pytest.mark.e2e

MiB = 1024**2
S3_PREFIX = "stored/"


@pytest.fixture
def env(pipeline: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The pipeline's settings and AWS variables, in this process's environment as in a subprocess's."""
    pipeline["FILESTREAM_S3_PREFIX"] = S3_PREFIX
    for variable in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    for variable, value in pipeline.items():
        monkeypatch.setenv(variable, value)
    return pipeline


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return load_settings()


@pytest.fixture
def s3(settings: Settings) -> BaseClient:
    client = make_s3_client(4)
    ensure_bucket(client, settings.s3_bucket)
    return client


def store(s3: BaseClient, settings: Settings, source: str, path: str, data: bytes) -> None:
    """Put a file into the bucket as the transfer agent does: metadata and a full-object CRC32."""
    store_pieces(s3, settings, source, path, [data], len(data))


def store_large(s3: BaseClient, settings: Settings, source: str, path: str, size: int) -> None:
    block = os.urandom(MiB)
    store_pieces(s3, settings, source, path, (block for _ in range(size // MiB)), size)


def store_pieces(
    s3: BaseClient, settings: Settings, source: str, path: str, pieces: Iterable[bytes], size: int
) -> None:
    store_object(
        s3,
        settings.s3_bucket,
        object_key(settings.s3_prefix, source, path),
        pieces,
        object_metadata(source, path, 1, "0" * 64, size),
        layout=agent_layout(settings),
    )


def store_corrupted(s3: BaseClient, settings: Settings, source: str, path: str, data: bytes) -> None:
    """An object whose stored CRC32 is not that of its bytes; moto keeps a claimed checksum unchecked."""
    s3.put_object(
        Bucket=settings.s3_bucket,
        Key=object_key(settings.s3_prefix, source, path),
        Body=data,
        ChecksumAlgorithm="CRC32",
        ChecksumCRC32=crc32_base64(zlib.crc32(data + b"!")),
    )


def download(settings: Settings, dest: Path, *, overwrite: bool = False, layout: str = "mirror") -> DownloadReport:
    request = DownloadRequest(dest=dest, selection=Selection(), layout=layout, overwrite=overwrite, jobs=3)
    return run_download(settings, request, threading.Event())


def files_under(directory: Path) -> dict[str, bytes]:
    """Every file below ``directory`` (hidden temp files included), by relative path."""
    return {str(path.relative_to(directory)): path.read_bytes() for path in directory.rglob("*") if path.is_file()}


def test_downloaded_files_equal_the_originals_byte_for_byte(s3, settings, tmp_path):
    originals = {
        ("cam1", "2024/multipart.bin"): os.urandom(20 * MiB + 3),
        ("cam1", "empty"): b"",
        ("cam1", "résumé/ü ñ.txt"): b"non-ASCII path",
        ("cam2", "small.bin"): os.urandom(3000),
    }
    for (source, path), data in originals.items():
        store(s3, settings, source, path, data)

    report = download(settings, tmp_path / "out")

    assert files_under(tmp_path / "out") == {f"{source}/{path}": data for (source, path), data in originals.items()}
    assert report.written == [tmp_path / "out" / source / path for source, path in sorted(originals)]
    assert report.failed == [] and not report.stopped


def test_a_corrupted_object_is_refused_and_leaves_nothing_behind(s3, settings, tmp_path):
    store(s3, settings, "cam1", "good.bin", b"good")
    store_corrupted(s3, settings, "cam1", "bad.bin", os.urandom(3 * MiB))
    store_corrupted(s3, settings, "cam1", "replaced.bin", b"corrupt replacement")
    out = tmp_path / "out"
    (out / "cam1").mkdir(parents=True)
    (out / "cam1" / "replaced.bin").write_bytes(b"previous version")

    report = download(settings, out, overwrite=True)

    assert [(failure.stored.key, "CRC32" in reason) for failure, reason in report.failed] == [
        ("stored/cam1/bad.bin", True),
        ("stored/cam1/replaced.bin", True),
    ]
    assert report.written == [out / "cam1" / "good.bin"]
    assert files_under(out) == {"cam1/good.bin": b"good", "cam1/replaced.bin": b"previous version"}


def test_a_download_broken_off_mid_file_keeps_the_previous_file(s3, settings, tmp_path, monkeypatch):
    store(s3, settings, "cam1", "big.bin", os.urandom(12 * MiB))
    out = tmp_path / "out"
    (out / "cam1").mkdir(parents=True)
    (out / "cam1" / "big.bin").write_bytes(b"previous version")
    original_read = StreamingBody.read
    reads = 0

    def read_then_break(self: StreamingBody, amt: int | None = None) -> bytes:
        nonlocal reads
        reads += 1
        if reads == 4:
            raise ConnectionResetError("connection reset by peer")
        return original_read(self, amt)

    monkeypatch.setattr(StreamingBody, "read", read_then_break)

    report = download(settings, out, overwrite=True)

    assert [(failure.stored.key, reason) for failure, reason in report.failed] == [
        ("stored/cam1/big.bin", "connection reset by peer")
    ]
    assert files_under(out) == {"cam1/big.bin": b"previous version"}


def test_a_stop_request_discards_the_files_in_progress(s3, settings, tmp_path):
    for name in ("a.bin", "b.bin", "c.bin"):
        store(s3, settings, "cam1", name, os.urandom(6 * MiB))
    keys = [object_key(settings.s3_prefix, "cam1", name) for name in ("a.bin", "b.bin", "c.bin")]
    plan = plan_downloads(
        describe_objects(s3, settings.s3_bucket, keys, jobs=2),
        bucket_prefix=settings.s3_prefix,
        dest=tmp_path / "out",
        layout="mirror",
        overwrite=False,
        exists=os.path.lexists,
    )
    stop = threading.Event()

    class StopMidFile(LogProgress):
        """Ctrl-C, as the command passes it on, once some bytes of a file have been written."""

        def advanced(self, size: int) -> None:
            super().advanced(size)
            stop.set()

    report = execute(plan, s3, settings.s3_bucket, jobs=2, progress=StopMidFile(plan), stop=stop)

    assert report.stopped and report.written == [] and report.failed == []
    assert files_under(tmp_path / "out") == {}


def test_existing_files_refuse_the_whole_plan_unless_overwrite_is_given(s3, settings, tmp_path):
    store(s3, settings, "cam1", "a.bin", b"new a")
    store(s3, settings, "cam1", "b.bin", b"new b")
    out = tmp_path / "out"
    (out / "cam1").mkdir(parents=True)
    (out / "cam1" / "b.bin").write_bytes(b"old b")

    with pytest.raises(DownloadPlanError, match=r"1 destination\(s\) already exist.*\n  .*/out/cam1/b\.bin$"):
        download(settings, out)
    assert files_under(out) == {"cam1/b.bin": b"old b"}  # a.bin was not written either

    report = download(settings, out, overwrite=True)

    assert report.written == [out / "cam1" / "a.bin", out / "cam1" / "b.bin"]
    assert files_under(out) == {"cam1/a.bin": b"new a", "cam1/b.bin": b"new b"}


def test_a_destination_behind_a_symlink_leading_out_of_dest_refuses_the_plan(s3, settings, tmp_path):
    store(s3, settings, "cam1", "a.bin", b"a")
    store(s3, settings, "cam2", "b.bin", b"b")
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "cam2").symlink_to(elsewhere)

    with pytest.raises(UnsafeDestination, match="stored/cam2/b.bin: destination .* resolves outside"):
        download(settings, out)
    assert list(elsewhere.iterdir()) == [] and not (out / "cam1").exists()


# --- the command, as a real `faust -A app download` process ------------------------------------


def faust_download(env: dict[str, str], *arguments: str) -> subprocess.Popen:
    return subprocess.Popen(
        [FAUST, "-A", "app", "download", *arguments],
        env=child_env(env),
        cwd=PROJECT_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_the_command_prints_the_written_files_and_exits_non_zero_on_errors(env, s3, settings, tmp_path):
    store(s3, settings, "cam2", "b.bin", b"b")
    store(s3, settings, "cam1", "x/a.bin", b"a")
    out = tmp_path / "out"

    stdout, stderr = faust_download(env, str(out), "--layout", "flat").communicate(timeout=120)
    assert stdout.splitlines() == [str(out / "cam1__x__a.bin"), str(out / "cam2__b.bin")], stderr
    assert files_under(out) == {"cam1__x__a.bin": b"a", "cam2__b.bin": b"b"}

    again = faust_download(env, str(out), "--layout", "flat")
    stdout, stderr = again.communicate(timeout=120)
    assert again.returncode == 1 and stdout == ""
    assert "download refused (nothing written): 2 destination(s) already exist; use --overwrite" in stderr

    nothing = faust_download(env, str(out), "--source", "cam3")
    stdout, stderr = nothing.communicate(timeout=120)
    assert nothing.returncode == 1 and stdout == ""
    assert "nothing to download: no object in s3://" in stderr


def test_the_command_exits_non_zero_when_a_file_fails(env, s3, settings, tmp_path):
    store(s3, settings, "cam1", "good.bin", b"good")
    store_corrupted(s3, settings, "cam1", "bad.bin", b"bad")
    out = tmp_path / "out"

    command = faust_download(env, str(out))
    stdout, stderr = command.communicate(timeout=120)

    assert command.returncode == 1
    assert stdout.splitlines() == [str(out / "cam1" / "good.bin")]
    assert "download incomplete: 1 of 2 file(s) failed, 1 written:\n  stored/cam1/bad.bin:" in stderr
    assert files_under(out) == {"cam1/good.bin": b"good"}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "killed"])
def test_an_interrupted_command_leaves_no_partial_file_and_keeps_the_previous_one(env, s3, settings, tmp_path, signum):
    store_large(s3, settings, "cam1", "large.bin", 256 * MiB)
    out = tmp_path / "out"
    (out / "cam1").mkdir(parents=True)
    destination = out / "cam1" / "large.bin"
    destination.write_bytes(b"previous version")

    command = faust_download(env, str(out), "--overwrite", "--jobs", "1")
    deadline = time.monotonic() + 60
    while not any(path.stat().st_size for path in (out / "cam1").glob(".large.bin.*.part")):
        assert command.poll() is None and time.monotonic() < deadline, command.communicate()
        time.sleep(0.005)
    command.send_signal(signum)
    stdout, stderr = command.communicate(timeout=60)

    assert destination.read_bytes() == b"previous version"
    if signum == signal.SIGINT:
        assert command.returncode == 130, stderr
        assert "download interrupted: 0 of 1 file(s) written, no partial file left" in stderr
        assert files_under(out) == {"cam1/large.bin": b"previous version"}
    else:
        # Nothing runs on SIGKILL: at most the hidden temp sibling remains, never a partial destination.
        assert command.returncode == -signal.SIGKILL
        assert set(files_under(out)) <= {"cam1/large.bin"} | {
            str(path.relative_to(out)) for path in (out / "cam1").glob(".large.bin.*.part")
        }

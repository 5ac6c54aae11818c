"""The uploader against a scripted in-memory broker: acknowledgements, retries, outages, bad files."""

import asyncio
import hashlib
import os
from collections import defaultdict
from pathlib import Path

import pytest
from aiokafka.errors import KafkaConnectionError, NodeNotReadyError, TopicAuthorizationFailedError

import client.uploader
from client.discovery import discover
from client.kafka_security import BrokerAccessError
from client.registry import Registry
from client.topics import TopicMismatch
from client.upload_options import UploadOptions
from client.upload_report import FileResult, Outcome
from client.uploader import Uploader
from models.chunk import FileChunk, decode_chunk
from settings import load_settings

CHUNK = 1000


class FakeBroker:
    """Acknowledges on the next loop turn; ``down`` makes every request fail as a dead broker's would."""

    def __init__(self, fail_after: int | None = None, recover_on_connect: int | None = None) -> None:
        self.down = False
        self.fail_after = fail_after
        self.recover_on_connect = recover_on_connect
        self.acked: list[tuple[bytes, bytes]] = []
        self.connects = 0
        self.unacked_bytes = 0
        self.max_unacked_bytes = 0

    async def prepare_topics(self) -> None:
        self.connects += 1
        if self.down and self.recover_on_connect is not None and self.connects >= self.recover_on_connect:
            self.down = False
        if self.down:
            raise KafkaConnectionError("Unable to bootstrap from fake broker")

    def producer(self) -> "FakeProducer":
        return FakeProducer(self)

    def send(self, key: bytes, value: bytes) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self.unacked_bytes += len(value)
        self.max_unacked_bytes = max(self.max_unacked_bytes, self.unacked_bytes)
        asyncio.get_running_loop().call_soon(self._answer, future, key, value)
        return future

    def _answer(self, future: asyncio.Future, key: bytes, value: bytes) -> None:
        self.unacked_bytes -= len(value)
        if self.fail_after is not None and len(self.acked) >= self.fail_after:
            self.down, self.fail_after = True, None
        if self.down:
            future.set_exception(NodeNotReadyError("node 1 is not ready"))
        else:
            self.acked.append((key, value))
            future.set_result(None)

    def files(self) -> dict[str, dict[int, bytes]]:
        """``path -> generation -> content`` reassembled from the acknowledged records."""
        chunks: dict[tuple[str, int], dict[int, FileChunk]] = defaultdict(dict)
        for key, value in self.acked:
            record = decode_chunk(value)
            assert key == record.file_id.key
            assert record.generation is not None, "the uploader numbers every generation"
            chunks[(record.path, record.generation)][record.index] = record
        files: dict[str, dict[int, bytes]] = defaultdict(dict)
        for (path, generation), by_index in chunks.items():
            count = next(iter(by_index.values())).chunk_count
            if len(by_index) == count:
                content = b"".join(by_index[index].payload for index in range(count))
                assert hashlib.sha256(content).hexdigest() == by_index[0].file_hash
                files[path][generation] = content
        return dict(files)


class FakeProducer:
    def __init__(self, broker: FakeBroker) -> None:
        self.broker = broker

    async def start(self) -> None:
        if self.broker.down:
            raise KafkaConnectionError("Unable to bootstrap from fake broker")

    async def stop(self) -> None:
        pass

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future:
        return self.broker.send(key, value)


class RecordingProgress:
    def __init__(self) -> None:
        self.planned_bytes = 0
        self.acked_bytes = 0
        self.results: list[FileResult] = []

    def planned(self, files: int, size: int) -> None:
        self.planned_bytes += size

    def advanced(self, size: int) -> None:
        self.acked_bytes += size

    def finished(self, result: FileResult) -> None:
        self.results.append(result)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    (root / "sub").mkdir(parents=True)
    for name, size in [("empty", 0), ("one", 1), ("exact", 2 * CHUNK), ("sub/big", 5 * CHUNK + 7)]:
        (root / name).write_bytes(os.urandom(size))
    return root


def run_upload(tmp_path: Path, broker: FakeBroker, root: Path, **options):
    settings = load_settings({"FILESTREAM_DATA_DIR": str(tmp_path / "data")})
    upload_options = UploadOptions(chunk_size=CHUNK, first_backoff=0.001, **options)

    async def go():
        with Registry.in_data_dir(settings.data_dir, settings.chunks_topic) as registry:
            uploader = Uploader(
                settings,
                registry,
                upload_options,
                RecordingProgress(),
                producer_factory=broker.producer,
                prepare_topics=broker.prepare_topics,
            )
            try:
                results = await uploader.upload(discover([root], "host").files)
            finally:
                await uploader.stop()
            sent = {file.file_id.path: registry.sent(file.file_id) for file in discover([root], "host").files}
            return results, {path: s for path, s in sent.items() if s is not None}, uploader.progress

    return asyncio.run(go())


def contents(root: Path) -> dict[str, bytes]:
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in root.rglob("*") if path.is_file()}


def latest(files: dict[str, dict[int, bytes]]) -> dict[str, bytes]:
    return {path: generations[max(generations)] for path, generations in files.items()}


def test_every_file_is_sent_acknowledged_and_recorded(tmp_path, tree):
    broker = FakeBroker()
    results, registered, progress = run_upload(tmp_path, broker, tree)
    assert [r.outcome for r in results] == [Outcome.SENT] * 4
    assert latest(broker.files()) == contents(tree)
    assert sorted(registered) == sorted(contents(tree))
    assert progress.acked_bytes == progress.planned_bytes == sum(map(len, contents(tree).values()))
    assert {r.generation for r in results} == {s.generation for s in registered.values()}


def test_nothing_is_sent_again_unless_the_content_changed(tmp_path, tree):
    run_upload(tmp_path, FakeBroker(), tree)
    first = {path: s.generation for path, s in run_upload(tmp_path, FakeBroker(), tree)[1].items()}

    os.utime(tree / "one", ns=(1, 1))  # touched, same content
    (tree / "exact").write_bytes(b"new content")
    broker = FakeBroker()
    results, registered, _ = run_upload(tmp_path, broker, tree)

    assert {r.file.file_id.path: r.outcome for r in results} == {
        "empty": Outcome.UNCHANGED,
        "one": Outcome.UNCHANGED,
        "exact": Outcome.SENT,
        "sub/big": Outcome.UNCHANGED,
    }
    assert broker.files() == {"exact": {registered["exact"].generation: b"new content"}}
    assert registered["exact"].generation > first["exact"]
    assert registered["one"].generation == first["one"]
    # The touched file's new signature was remembered: the next run skips it without reading it.
    assert [r.detail for r in run_upload(tmp_path, FakeBroker(), tree)[0] if r.file.file_id.path == "one"] == [
        "already sent"
    ]


def test_a_lasting_outage_mid_upload_names_the_files_not_sent_and_records_none_of_them(tmp_path, tree):
    # empty (1 chunk) and exact (2 chunks) are acknowledged, then the broker dies for good.
    broker = FakeBroker(fail_after=3)
    results, registered, _ = run_upload(tmp_path, broker, tree, retries=3)
    outcomes = {r.file.file_id.path: (r.outcome, r.detail) for r in results}
    assert outcomes["empty"] == (Outcome.SENT, "") and outcomes["exact"] == (Outcome.SENT, "")
    for path in ("one", "sub/big"):
        outcome, detail = outcomes[path]
        assert outcome is Outcome.FAILED
        assert detail.startswith("not sent: broker 127.0.0.1:9092 still failing after 3 retries (KafkaConnectionError")
    assert sorted(registered) == ["empty", "exact"]
    assert broker.connects == 1 + 3


def test_a_passing_outage_is_retried_and_every_file_arrives(tmp_path, tree):
    broker = FakeBroker(fail_after=2, recover_on_connect=3)
    results, registered, _ = run_upload(tmp_path, broker, tree, retries=5)
    assert [r.outcome for r in results] == [Outcome.SENT] * 4
    assert latest(broker.files()) == contents(tree)
    assert sorted(registered) == sorted(contents(tree))


def test_an_unreachable_broker_fails_every_file_and_records_nothing(tmp_path, tree):
    broker = FakeBroker()
    broker.down = True
    results, registered, _ = run_upload(tmp_path, broker, tree, retries=2)
    assert [r.outcome for r in results] == [Outcome.FAILED] * 4
    assert all("KafkaConnectionError" in r.detail for r in results)
    assert registered == {} and broker.acked == []


def test_a_wrongly_partitioned_topic_aborts_without_retrying(tmp_path, tree):
    async def mismatched() -> None:
        raise TopicMismatch("topic chunks has 4 partitions but FILESTREAM_PARTITIONS is 8")

    broker = FakeBroker()
    broker.prepare_topics = mismatched
    results, registered, _ = run_upload(tmp_path, broker, tree, retries=5)
    assert {r.detail for r in results} == {"not sent: topic chunks has 4 partitions but FILESTREAM_PARTITIONS is 8"}
    assert registered == {}


def test_a_file_changed_before_its_chunks_are_resent_goes_again_as_a_new_generation(tmp_path, tree):
    big = tree / "sub" / "big"

    class ChangingBroker(FakeBroker):
        async def prepare_topics(self) -> None:
            if self.connects == 1:  # the retry after the outage: the file changes meanwhile
                big.write_bytes(b"rewritten while the broker was away")
            await super().prepare_topics()

    # exact + one + empty + 2 chunks of big are acknowledged, then the outage.
    broker = ChangingBroker(fail_after=6, recover_on_connect=2)
    results, registered, _ = run_upload(tmp_path, broker, tree, keep_limit=0)
    assert [r.outcome for r in results] == [Outcome.SENT] * 4
    assert latest(broker.files())["sub/big"] == b"rewritten while the broker was away"
    assert registered["sub/big"].file_hash == hashlib.sha256(big.read_bytes()).hexdigest()


def test_unreadable_and_vanished_files_fail_alone(tmp_path, tree):
    files = discover([tree], "host").files
    (tree / "one").unlink()
    (tree / "exact").unlink()
    (tree / "exact").mkdir()  # now a directory: opens, but cannot be read as a file
    broker = FakeBroker()
    settings = load_settings({"FILESTREAM_DATA_DIR": str(tmp_path / "data")})

    async def go():
        with Registry.in_data_dir(settings.data_dir, settings.chunks_topic) as registry:
            uploader = Uploader(
                settings,
                registry,
                UploadOptions(chunk_size=CHUNK),
                RecordingProgress(),
                producer_factory=broker.producer,
                prepare_topics=broker.prepare_topics,
            )
            return await uploader.upload(files)

    results = {r.file.file_id.path: (r.outcome, r.detail) for r in asyncio.run(go())}
    assert results["one"] == (Outcome.FAILED, "vanished before it could be read")
    assert results["exact"][0] is Outcome.FAILED and "regular file" in results["exact"][1]
    assert results["empty"][0] is results["sub/big"][0] is Outcome.SENT


def test_bytes_in_flight_stay_within_the_budget(tmp_path, tree):
    broker = FakeBroker()
    run_upload(tmp_path, broker, tree, max_in_flight_bytes=3 * CHUNK)
    assert 0 < broker.max_unacked_bytes <= 3 * CHUNK + 2 * 1024  # + two records' headers


def test_the_next_file_is_read_while_the_current_one_is_being_sent(tmp_path, tree, monkeypatch):
    """aiokafka's send() blocks while its batch waits, so reading ahead is what keeps the producer busy."""
    scans_started: list[Path] = []
    real_scan = client.uploader.scan_file

    def recording_scan(path, *args):
        scans_started.append(path)
        return real_scan(path, *args)

    class BlockingProducer(FakeProducer):
        async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future:
            # The first file's first chunk is only taken once the second file's scan has begun.
            while len(scans_started) < 2:
                await asyncio.sleep(0.001)
            return await super().send(topic, value, key)

    monkeypatch.setattr(client.uploader, "scan_file", recording_scan)
    broker = FakeBroker()
    broker.producer = lambda: BlockingProducer(broker)
    settings = load_settings({"FILESTREAM_DATA_DIR": str(tmp_path / "data")})

    async def go():
        with Registry.in_data_dir(settings.data_dir, settings.chunks_topic) as registry:
            uploader = Uploader(
                settings,
                registry,
                UploadOptions(chunk_size=CHUNK),
                RecordingProgress(),
                producer_factory=broker.producer,
                prepare_topics=broker.prepare_topics,
            )
            return await asyncio.wait_for(uploader.upload(discover([tree], "host").files), timeout=10)

    assert [r.outcome for r in asyncio.run(go())] == [Outcome.SENT] * 4
    assert latest(broker.files()) == contents(tree)


class AclRefusingBroker(FakeBroker):
    """A broker whose ACLs let the user connect and describe, but not write to the chunk topic."""

    def _answer(self, future: asyncio.Future, key: bytes, value: bytes) -> None:
        self.unacked_bytes -= len(value)
        future.set_exception(TopicAuthorizationFailedError("filestream-chunks"))


def test_a_topic_the_acls_refuse_ends_the_upload_at_once_naming_it(tmp_path, tree):
    broker = AclRefusingBroker()
    with pytest.raises(BrokerAccessError) as refused:
        run_upload(tmp_path, broker, tree, retries=5)
    assert "to write to topic filestream-chunks (TOPIC_AUTHORIZATION_FAILED)" in str(refused.value)
    assert "WRITE" in str(refused.value)
    assert broker.connects == 1  # not retried
    with Registry.in_data_dir(tmp_path / "data", "filestream-chunks") as registry:
        assert all(registry.sent(file.file_id) is None for file in discover([tree], "host").files)


def test_topics_the_acls_do_not_let_it_create_end_the_upload(tmp_path, tree):
    broker = FakeBroker()

    async def refused() -> None:
        broker.connects += 1
        raise TopicAuthorizationFailedError("cannot create topic filestream-chunks")

    broker.prepare_topics = refused
    with pytest.raises(
        BrokerAccessError, match="create and describe its topics .*cannot create topic filestream-chunks"
    ):
        run_upload(tmp_path, broker, tree, retries=5)
    assert broker.connects == 1

"""The sent-files registry and generation numbers."""

from client.discovery import FileSignature
from client.registry import Registry, next_generation
from models.identity import FileId

FILE = FileId("host", "a/b.bin")
SIGNATURE = FileSignature(size=10, mtime_ns=1_000)


def test_next_generation_follows_the_clock_and_always_grows():
    assert next_generation(None, 5_000) == 5_000
    assert next_generation(4_000, 5_000) == 5_000
    assert next_generation(5_000, 5_000) == 5_001
    assert next_generation(9_000, 5_000) == 9_001


def test_a_file_is_sent_only_once_recorded_with_its_signature(tmp_path):
    with Registry.in_data_dir(tmp_path, "chunks") as registry:
        generation = registry.allocate_generation(FILE, now=100)
        assert registry.sent(FILE) is None
        assert not registry.is_sent(FILE, SIGNATURE)

        registry.record_sent(FILE, generation, SIGNATURE, "hash-1")

        assert registry.is_sent(FILE, SIGNATURE)
        assert not registry.is_sent(FILE, FileSignature(size=10, mtime_ns=2_000))
        assert not registry.is_sent(FileId("host", "other"), SIGNATURE)
        sent = registry.sent(FILE)
        assert (sent.generation, sent.signature, sent.file_hash) == (100, SIGNATURE, "hash-1")


def test_the_registry_survives_a_restart_and_is_kept_per_topic(tmp_path):
    with Registry.in_data_dir(tmp_path, "chunks") as registry:
        registry.record_sent(FILE, registry.allocate_generation(FILE, now=100), SIGNATURE, "hash-1")
    assert (tmp_path / "uploader" / "registry.sqlite3").is_file()
    with Registry.in_data_dir(tmp_path, "chunks") as registry:
        assert registry.is_sent(FILE, SIGNATURE)
    with Registry.in_data_dir(tmp_path, "other-chunks") as registry:
        assert not registry.is_sent(FILE, SIGNATURE)


def test_generations_grow_through_failed_sends_and_a_clock_stepping_back(tmp_path):
    with Registry.in_data_dir(tmp_path, "chunks") as registry:
        failed_attempt = registry.allocate_generation(FILE, now=1_000)
        assert registry.sent(FILE) is None
        retry = registry.allocate_generation(FILE, now=500)
        registry.record_sent(FILE, retry, SIGNATURE, "hash-1")
        next_upload = registry.allocate_generation(FILE, now=200)
    assert failed_attempt < retry < next_upload
    assert (failed_attempt, retry, next_upload) == (1_000, 1_001, 1_002)


def test_recording_an_older_generation_again_does_not_lower_the_next_one(tmp_path):
    with Registry.in_data_dir(tmp_path, "chunks") as registry:
        first = registry.allocate_generation(FILE, now=100)
        registry.allocate_generation(FILE, now=300)
        registry.record_sent(FILE, first, SIGNATURE, "hash-1")
        assert registry.allocate_generation(FILE, now=0) == 301

import pytest

from settings import SettingsError, load_settings


def test_s3_defaults():
    settings = load_settings({})
    assert (settings.s3_multipart_threshold, settings.s3_part_size) == (8 * 1024**2, 8 * 1024**2)
    assert (settings.s3_max_retries, settings.s3_concurrency, settings.s3_threads) == (3, 8, 8)
    assert (settings.s3_retry_backoff, settings.s3_retry_backoff_max) == (2.0, 300.0)


def test_a_part_size_below_the_s3_minimum_is_refused():
    with pytest.raises(SettingsError, match="FILESTREAM_S3_PART_SIZE"):
        load_settings({"FILESTREAM_S3_PART_SIZE": "4MiB", "FILESTREAM_S3_MULTIPART_THRESHOLD": "4MiB"})


def test_a_threshold_above_the_part_size_is_refused():
    with pytest.raises(SettingsError, match="FILESTREAM_S3_MULTIPART_THRESHOLD"):
        load_settings({"FILESTREAM_S3_PART_SIZE": "16MiB", "FILESTREAM_S3_MULTIPART_THRESHOLD": "32MiB"})


def test_bigger_parts_with_a_smaller_threshold_load():
    settings = load_settings({"FILESTREAM_S3_PART_SIZE": "64MiB", "FILESTREAM_S3_MULTIPART_THRESHOLD": "5MiB"})
    assert (settings.s3_part_size, settings.s3_multipart_threshold) == (64 * 1024**2, 5 * 1024**2)

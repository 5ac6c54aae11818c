"""The uploader's options: pauses between broker retries."""

from client.upload_options import UploadOptions

CHUNK = 1000


def test_broker_retries_pause_a_random_time_up_to_a_doubling_ceiling():
    options = UploadOptions(chunk_size=CHUNK, first_backoff=1.0, max_backoff=30.0)
    assert [options.backoff_ceiling(attempt) for attempt in range(1, 7)] == [1, 2, 4, 8, 16, 30]
    for attempt in (1, 3, 6):
        pauses = [options.backoff(attempt) for _ in range(400)]
        ceiling = options.backoff_ceiling(attempt)
        assert all(0 <= pause <= ceiling for pause in pauses)
        # Spread over the whole range, not the same pause for every uploader.
        assert min(pauses) < 0.1 * ceiling and max(pauses) > 0.9 * ceiling
        assert len(set(pauses)) == len(pauses)

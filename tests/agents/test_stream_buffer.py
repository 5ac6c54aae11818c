"""Faust's stream buffer holds about 64 MiB of chunks, whatever the chunk size, and is what the app uses."""

from __future__ import annotations

from app import app, settings, stream_buffer_events


def test_the_buffer_holds_about_64_mib_of_chunks_and_never_fewer_than_8():
    assert stream_buffer_events(1024**2) == 64
    assert stream_buffer_events(64 * 1024) == 1024
    assert stream_buffer_events(64 * 1024**2) == 8


def test_the_app_bounds_its_streams_with_it():
    assert app.conf.stream_buffer_maxsize == stream_buffer_events(settings.chunk_size)

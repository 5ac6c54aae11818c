"""Registers every filestream view on the worker's web server, unless ``FILESTREAM_VIEWS_ENABLED=false``."""

from app import settings

if settings.views_enabled:
    from web import dashboard, file_view, metrics_view, summary, tables  # noqa: F401  (each registers its pages)

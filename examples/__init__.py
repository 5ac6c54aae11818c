"""Example processors: load them with ``FILESTREAM_PROCESSORS=examples.checksum_report,examples.csv_stats``."""

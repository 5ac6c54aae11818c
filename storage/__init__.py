"""Where file bytes go: local files and S3 objects."""

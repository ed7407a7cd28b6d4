"""The s3store tests run against a real SeaweedFS S3 server, one per test session."""

from seaweed import s3_server  # noqa: F401

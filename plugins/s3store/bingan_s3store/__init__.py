"""bingan s3store plugin: blobs in S3-compatible object storage (``s3://`` storage URLs)."""

from __future__ import annotations

from bingan.hooks import hookimpl
from bingan.hooks.types import PluginInfo

PLUGIN = PluginInfo(name="s3store", version="0.1.0", hooks_api="1.1", title="对象存储（S3）")


@hookimpl
def storage_backend(url: str, home: str):
    """An ``S3BlobStore`` for ``s3://`` URLs; None for any other scheme."""
    if not url.lower().startswith("s3://"):
        return None
    from bingan_s3store.store import open_store

    return open_store(url, home)

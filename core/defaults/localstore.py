"""Default plugin: the local-disk blob store, chosen by ``BINGAN_STORAGE_URL``.

- empty URL             -> ``BINGAN_HOME/blobs``
- ``file:///abs/path``  -> that folder
- ``file:relative/dir`` -> that folder, relative to the working directory at start
- any other scheme      -> not ours (another ``storage_backend`` answers, e.g. ``s3://``)
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from bingan.core.config import ConfigError
from bingan.core.storage import LocalBlobStore
from bingan.hooks import hookimpl


def local_path(url: str, home: str) -> Path | None:
    """The folder a local-store URL names, or None if the URL is not a ``file:`` URL."""
    if url == "":
        return Path(home) / "blobs"
    parts = urlsplit(url)
    if parts.scheme.lower() != "file":
        return None
    if parts.netloc not in ("", "localhost"):
        # file://server/share would silently mean a local folder named "share": refuse it
        raise ConfigError(
            f"BINGAN_STORAGE_URL {url!r}: a file: URL cannot name another host; "
            "mount the share and use file:///mount/point"
        )
    path = unquote(parts.path)
    if not path:
        raise ConfigError(f"BINGAN_STORAGE_URL {url!r}: no folder given")
    return Path(path)


@hookimpl
def storage_backend(url: str, home: str) -> LocalBlobStore | None:
    """Local blobs for the empty URL and ``file:`` URLs; None for any other scheme."""
    path = local_path(url, home)
    if path is None:
        return None
    try:
        store = LocalBlobStore(path)
        probe = store.tmp / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"BINGAN_STORAGE_URL {url!r}: folder {path} cannot hold blobs: "
                          f"{exc.strerror or exc}") from exc
    return store

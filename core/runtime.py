"""The runtime: configuration, plugin manager, database, blob store and keys, built once.

There is no import-time global plugin manager: the app factory, the CLI and the tests each build
a Runtime. It is handed to every hook that needs it, every task handler and every job (``rt``);
plugins never look it up. ``current()`` is for core's own process entry points only (a layout
test fails when a plugin calls it).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from bingan.core.config import Config, ConfigError, CoreSettings, load_config
from bingan.core.db import make_engine, make_read_sessionmaker, make_sessionmaker
from bingan.core.plugins import PluginManager, build_plugin_manager
from bingan.hooks.types import BlobStore

S = TypeVar("S")

_current: "Runtime | None" = None
_lock = threading.Lock()


def _write_private(path: Path, text: str) -> None:
    """Atomically write a 0600 file (temp file, fsync, rename)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def audit_key_path(config: Config) -> Path:
    """The generated audit key of this instance: in ``[core] key_dir`` (outside BINGAN_HOME),
    one file per data folder."""
    tag = hashlib.sha256(str(config.home).encode()).hexdigest()[:16]
    return Path(config.core.key_dir) / f"audit-{tag}.key"


def _load_or_create_secrets(config: Config) -> dict[str, str]:
    """Random keys unless set in plugins.toml: the session/ID key in BINGAN_HOME/secrets.json
    (0600), the audit key in ``audit_key_path`` outside BINGAN_HOME (0600, folder 0700). An
    audit key found in secrets.json (older installations) moves there."""
    home = config.home
    path = home / "secrets.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    if "secret_key" not in data:
        data["secret_key"] = secrets.token_hex(32)
        _write_private(path, json.dumps(data))
    if config.core.audit_key:
        return {"secret_key": data["secret_key"], "audit_key": config.core.audit_key}
    key_path = audit_key_path(config)
    try:
        key_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not key_path.exists():
            _write_private(key_path, data.get("audit_key") or secrets.token_hex(32))
        if "audit_key" in data:  # moved out of the data folder
            del data["audit_key"]
            _write_private(path, json.dumps(data))
        audit_key = key_path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"plugins.toml [core] key_dir: cannot keep the audit key in "
                          f"{key_path.parent}: {exc}") from exc
    return {"secret_key": data["secret_key"], "audit_key": audit_key}


def _private(path: Path) -> None:
    """Take group and other permissions away from a folder we own (BINGAN_HOME)."""
    try:
        st = path.stat()
        if st.st_uid == os.getuid() and st.st_mode & 0o077:
            path.chmod(st.st_mode & 0o700)
    except OSError:
        pass  # not ours (a mounted volume): the umask still covers what we create


@dataclass
class Runtime:
    """One assembled bingan: what the app, the CLI and the jobs share."""

    config: Config
    pm: PluginManager
    engine: Engine
    sessions: sessionmaker[Session]
    secret_key: bytes
    audit_key: bytes
    _store: BlobStore | None = field(default=None, repr=False)
    # BINGAN_STRICT_AUDIT=1 (the test suite sets it): recording an undeclared audit action
    # raises instead of logging a warning.
    strict_audit: bool = field(
        default_factory=lambda: os.environ.get("BINGAN_STRICT_AUDIT") == "1")
    audit_actions: dict[str, str] | None = field(default=None, repr=False)  # core.audit cache
    _read_sessions: sessionmaker[Session] | None = field(default=None, repr=False)

    @property
    def read_sessions(self) -> sessionmaker[Session]:
        """Sessions that only read (core.db.make_read_sessionmaker): on SQLite they neither
        take nor wait for the write lock. Use them for lookups on hot paths; a flush of a
        change in one raises."""
        if self._read_sessions is None:
            self._read_sessions = make_read_sessionmaker(self.engine)
        return self._read_sessions

    @property
    def home(self) -> Path:
        return self.config.home

    @property
    def tz(self) -> ZoneInfo:
        """The hospital's time zone (``[core] timezone``)."""
        return ZoneInfo(self.config.core.timezone)

    @property
    def store(self) -> BlobStore:
        """The blob store chosen by ``storage_backend`` for BINGAN_STORAGE_URL; with
        BINGAN_REPLICA_URL, a ``ReplicatedStore`` that writes both (core.storage_ops)."""
        if self._store is None:
            store = self.open_store(self.config.storage_url, "BINGAN_STORAGE_URL")
            if self.config.replica_url:
                from bingan.core.storage_ops import ReplicatedStore

                replica = self.open_store(self.config.replica_url, "BINGAN_REPLICA_URL")
                if replica.url == store.url:
                    raise ConfigError("BINGAN_REPLICA_URL names the same store as "
                                      "BINGAN_STORAGE_URL: a replica must be another disk or "
                                      "bucket")
                store = ReplicatedStore(store, replica)
            self._store = store
        return self._store

    def open_store(self, url: str, what: str = "storage URL") -> BlobStore:
        """The blob store a ``storage_backend`` provides for ``url`` (ConfigError if none)."""
        store = self.pm.hook.storage_backend(url=url, home=str(self.config.home))
        if store is None:
            scheme = url.partition(":")[0]
            raise ConfigError(
                f"{what} {url!r}: no storage backend for the {scheme!r} scheme is installed "
                "and enabled (core stores blobs in a local folder: file:///path, or empty "
                "for BINGAN_HOME/blobs; s3:// needs the s3store plugin)"
            )
        return store  # type: ignore[no-any-return]

    def fernet_key(self) -> bytes:
        return base64.urlsafe_b64encode(hashlib.sha256(b"idcard:" + self.secret_key).digest())

    def settings(self, schema: type[S]) -> S:
        """The validated settings of type ``schema``: ``CoreSettings`` for ``[core]``, else the
        settings struct an enabled plugin declared (``PluginInfo.settings``)."""
        if schema is CoreSettings:
            return self.config.core  # type: ignore[return-value]
        return self.pm.settings_of(schema)

    def close(self) -> None:
        self.engine.dispose()


def build_runtime(config: Config | None = None, **pm_kwargs: Any) -> Runtime:
    """Load config (unless given), build the plugin manager and the engine."""
    config = config or load_config()
    pm = build_plugin_manager(config, **pm_kwargs)
    # Patient data: everything this process creates (database, blobs, indexes, exports,
    # logs) is for its own user only, 0600 files and 0700 folders, whatever the umask was.
    os.umask(0o077)
    config.home.mkdir(mode=0o700, parents=True, exist_ok=True)
    _private(config.home)
    keys = _load_or_create_secrets(config)
    engine = make_engine(config.database_url)
    rt = Runtime(
        config=config,
        pm=pm,
        engine=engine,
        sessions=make_sessionmaker(engine),
        secret_key=(config.core.secret_key or keys["secret_key"]).encode(),
        audit_key=(config.core.audit_key or keys["audit_key"]).encode(),
    )
    try:
        _ = rt.store  # an unknown or unusable BINGAN_STORAGE_URL stops start-up, not the first blob
    except ConfigError:
        engine.dispose()
        raise
    set_current(rt)
    return rt


def set_current(rt: Runtime | None) -> None:
    global _current
    with _lock:
        _current = rt


def current() -> Runtime:
    """The runtime the running process assembled."""
    if _current is None:
        raise RuntimeError("no bingan runtime has been built in this process")
    return _current

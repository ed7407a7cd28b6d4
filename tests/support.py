"""Helpers shared by the tests of core and of every plugin (tests/ is on pytest's path)."""

from __future__ import annotations

from pathlib import Path

from bingan.core.config import load_config
from bingan.core.plugins import installed_plugins

REPO = Path(__file__).resolve().parents[1]


def make_config(home: Path, db_url: str, enabled: list[str] | None = None, **core_overrides):
    """A Config for tests: repo plugins.toml, our own home and database."""
    env = {"BINGAN_HOME": str(home), "BINGAN_DATABASE_URL": db_url,
           "BINGAN_KEY_DIR": str(home.parent / "keys")}  # the audit key, outside home
    cfg = load_config(REPO / "plugins.toml", env=env)
    if enabled is None:
        enabled = sorted(installed_plugins())
    cfg = cfg.with_enabled(enabled)
    for k, v in core_overrides.items():
        setattr(cfg.core, k, v)
    return cfg


def build_test_runtime(home: Path, db_url: str, enabled: list[str] | None = None, **kw):
    from bingan.core.runtime import build_runtime

    return build_runtime(make_config(home, db_url, enabled, **kw))

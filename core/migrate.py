"""Schema migrations: alembic with one version location (branch) per plugin.

``upgrade`` is idempotent; ``pending`` tells ``serve`` whether the database is behind.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(rt) -> AlembicConfig:
    """An alembic config whose version locations are core's plus every enabled plugin's."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    locations = [str(MIGRATIONS / "versions")]
    for lp in rt.pm.loaded.values():  # PluginInfo.migrations: the plugin's alembic versions
        if lp.info.migrations is not None:
            locations.append(str(lp.info.migrations))
    cfg.set_main_option("version_locations", " ".join(locations))
    cfg.set_main_option("path_separator", "space")
    cfg.set_main_option("sqlalchemy.url", rt.config.database_url.replace("%", "%%"))
    return cfg


def upgrade(rt) -> list[str]:
    """Upgrade every branch to its head; returns the heads now applied."""
    cfg = alembic_config(rt)
    with rt.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "heads")
    return current_heads(rt)


def current_heads(rt) -> list[str]:
    with rt.engine.connect() as conn:
        return sorted(MigrationContext.configure(conn).get_current_heads())


def pending(rt) -> list[str]:
    """Heads in the scripts that the database has not reached (empty when up to date)."""
    script = ScriptDirectory.from_config(alembic_config(rt))
    applied = set(current_heads(rt))
    reached: set[str] = set()
    for head in applied:
        reached.update(r.revision for r in script.iterate_revisions(head, "base"))
    return sorted(h for h in script.get_heads() if h not in reached)

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


def _disabled_locations(rt) -> list[str]:
    """Migration folders of plugins installed but not enabled: a plugin switched off keeps its
    tables and its row in alembic_version, and alembic must still know that revision to read
    the database's state (it would refuse every command otherwise)."""
    found = []
    for name, ep in sorted(getattr(rt.pm, "installed", {}).items()):
        if name in rt.pm.loaded:
            continue
        try:
            info = getattr(ep.load(), "PLUGIN", None)
        except Exception:  # noqa: BLE001 - a broken disabled plugin must not stop the others
            continue
        if info is not None and getattr(info, "migrations", None) is not None:
            found.append(str(info.migrations))
    return found


def _enabled_locations(rt) -> list[str]:
    locations = [str(MIGRATIONS / "versions")]
    for lp in rt.pm.loaded.values():  # PluginInfo.migrations: the plugin's alembic versions
        if lp.info.migrations is not None:
            locations.append(str(lp.info.migrations))
    return locations


def alembic_config(rt, disabled: bool = False) -> AlembicConfig:
    """An alembic config whose version locations are core's plus every enabled plugin's (and,
    with ``disabled``, those of installed plugins that are switched off)."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    locations = _enabled_locations(rt) + (_disabled_locations(rt) if disabled else [])
    cfg.set_main_option("version_locations", " ".join(locations))
    cfg.set_main_option("path_separator", "space")
    cfg.set_main_option("sqlalchemy.url", rt.config.database_url.replace("%", "%%"))
    return cfg


def _enabled_heads(rt, script: ScriptDirectory) -> list[str]:
    """Heads of the branches of core and the enabled plugins."""
    enabled = [Path(loc).resolve() for loc in _enabled_locations(rt)]
    heads = []
    for head in script.get_heads():
        path = Path(script.get_revision(head).path).resolve().parent
        if path in enabled:
            heads.append(head)
    return sorted(heads)


def _script(rt) -> tuple[AlembicConfig, ScriptDirectory]:
    """The config and scripts that know every revision the database holds: the enabled
    branches, plus the disabled plugins' only when the database has some of theirs."""
    cfg = alembic_config(rt)
    script = ScriptDirectory.from_config(cfg)
    applied = set(current_heads(rt))
    if applied - {r.revision for r in script.walk_revisions()}:
        cfg = alembic_config(rt, disabled=True)
        script = ScriptDirectory.from_config(cfg)
        unknown = applied - {r.revision for r in script.walk_revisions()}
        if unknown:
            raise RuntimeError(
                "the database holds schema revisions of no installed plugin "
                f"({', '.join(sorted(unknown))}): install the plugin that made them")
    return cfg, script


def upgrade(rt) -> list[str]:
    """Upgrade core's and every enabled plugin's branch to its head (a disabled plugin's branch
    stays where it is); returns the heads now applied."""
    cfg, script = _script(rt)
    targets = _enabled_heads(rt, script)
    everything = targets == sorted(script.get_heads())
    with rt.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        if everything:
            command.upgrade(cfg, "heads")
        else:
            for head in targets:
                command.upgrade(cfg, head)
    return current_heads(rt)


def current_heads(rt) -> list[str]:
    with rt.engine.connect() as conn:
        return sorted(MigrationContext.configure(conn).get_current_heads())


def pending(rt) -> list[str]:
    """Heads of core and the enabled plugins that the database has not reached (empty when up
    to date)."""
    _cfg, script = _script(rt)
    applied = set(current_heads(rt))
    reached: set[str] = set()
    for head in applied:
        reached.update(r.revision for r in script.iterate_revisions(head, "base"))
    return sorted(h for h in _enabled_heads(rt, script) if h not in reached)

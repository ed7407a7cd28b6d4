"""Configuration: plugins.toml (enabled plugins and their validated settings) plus environment.

Environment: BINGAN_HOME (data folder; default the user's data folder, ``$XDG_DATA_HOME/bingan``,
i.e. ``~/.local/share/bingan``: the same wherever a command is started, never the working
directory), BINGAN_DATABASE_URL (default SQLite under BINGAN_HOME), BINGAN_STORAGE_URL (default
local blobs under BINGAN_HOME). A secret is written
``key = { env = "NAME" }`` and read from the environment at start; a missing variable or a wrong
value stops start-up with a message that names the plugin and the key.

Which plugins.toml is read does not depend on the working directory, and is the same for the
command line and the server (both call ``load_config``): the file named by BINGAN_CONFIG (it must
exist), else ``$BINGAN_HOME/plugins.toml`` (the default home too) when that file exists, else the
default installed with core (``bingan/core/data/plugins.toml``, the repository's plugins.toml).
The installed default enables the standard plugins, so plugins it names that are not installed
are left out; a hospital's own file that enables a plugin not installed is an error.
``bingan plugins`` prints which file was read.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec


class ConfigError(Exception):
    """A setting is missing or wrong; the message names the plugin (or core) and the key."""


class CoreSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The ``[core]`` table of plugins.toml."""

    hospital_name: str = "示例医院"
    org_code: str = "000000000"
    theme: str = "default"
    mrn_pattern: str = r"^\d{6,10}$"
    admission_no_pattern: str = r"^ZY\d{6,14}$"
    # Code shapes checked by the admission intake (core.intake): ICD-10 (national clinical
    # edition 2.0, e.g. I21.000x001), ICD-O morphology of pathology diagnoses (M8140/3) and
    # ICD-9-CM-3 (national clinical edition 3.0, e.g. 47.0100, 31.1x00).
    icd10_pattern: str = r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,4}(x[0-9]{3})?)?[+*]?$"
    morphology_pattern: str = r"^M[0-9]{4}/[0-9]$"
    icd9cm3_pattern: str = r"^[0-9]{2}(\.[0-9x]{1,4}(x[0-9]{3})?)?$"
    session_idle_minutes: int = 30
    session_max_hours: int = 12
    lockout_failures: int = 5
    lockout_minutes: int = 15
    totp_required_roles: list[str] = msgspec.field(default_factory=lambda: ["admin"])
    trusted_proxies: list[str] = msgspec.field(default_factory=lambda: ["127.0.0.1", "::1"])
    trusted_launchers: list[str] = msgspec.field(default_factory=list)
    # The header a trusted proxy sets to the client's computer name (and strips from what
    # clients send), e.g. "X-Client-Computer"; empty: names passed through a proxy are
    # recorded as claimed.
    proxy_computer_header: str = ""
    cookie_secure: str = "auto"  # auto | always | never
    reverse_dns_timeout_ms: int = 200
    audit_key: str | None = None
    secret_key: str | None = None
    # Where the generated audit key is kept when ``audit_key`` is not set: a folder outside
    # BINGAN_HOME (default: BINGAN_KEY_DIR, else ~/.config/bingan), so a copy of the data
    # folder does not carry the key that would let it re-hash a rewritten chain.
    key_dir: str = ""
    # Audit checkpoints (signed chain heads) go to BINGAN_HOME/audit/checkpoints.jsonl and to
    # these anchors outside the database and the data folder: a file (another disk, an
    # append-only mount, a path the service user may only append to) and/or syslog
    # ("local" for /dev/log, or "udp://loghost:514" for a remote log host).
    audit_anchor_file: str = ""
    audit_syslog: str = ""
    audit_checkpoint_minutes: int = 10
    scheduler: bool = True
    max_upload_mb: int = 200  # request body limit; plugins' own file limits must stay below it
    # Background task worker threads `bingan serve` runs itself. A hospital group running
    # dedicated `bingan worker` processes (any number of hosts) sets 0: the web server then
    # only queues work.
    workers: int = 2
    # How long a worker holds a claimed task without renewing it: a worker renews its leases
    # every third of this while it lives; one that died or hung loses its tasks after it.
    task_lease_seconds: int = 60
    # role name -> record actions this role may perform on every record (default policy)
    role_actions: dict[str, list[str]] = msgspec.field(
        default_factory=lambda: {"records": ["view", "print", "export"]}
    )
    fixity_sample_size: int = 200
    # One limit on the pixels of a page image, for everything that reads one: capture refuses
    # a bigger page at upload (from the header, before decoding; a PDF page from its size at
    # the capture DPI), imaging refuses it while processing (A3 at 600 DPI is ~70 MP).
    max_page_pixels: int = 100_000_000
    # The hospital's time zone (IANA name): dates shown and typed, "today", job schedules.
    timezone: str = "Asia/Shanghai"

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"timezone {self.timezone!r} is not a known time zone") from exc
        for key in ("mrn_pattern", "admission_no_pattern", "icd10_pattern",
                    "morphology_pattern", "icd9cm3_pattern"):
            try:
                re.compile(getattr(self, key))
            except re.error as exc:
                raise ValueError(f"{key} is not a valid regular expression: {exc}") from exc
        if self.cookie_secure not in {"auto", "always", "never"}:
            raise ValueError("cookie_secure must be auto, always or never")
        if self.audit_syslog and not (self.audit_syslog == "local"
                                      or re.fullmatch(r"udp://[^:/]+:\d+", self.audit_syslog)):
            raise ValueError('audit_syslog must be "local" or udp://host:port')
        if self.audit_checkpoint_minutes < 1:
            raise ValueError("audit_checkpoint_minutes must be >= 1")
        if self.workers < 0:
            raise ValueError("workers must be >= 0")
        if self.task_lease_seconds < 1:
            raise ValueError("task_lease_seconds must be >= 1")
        if self.max_page_pixels < 16 * 16:
            raise ValueError("max_page_pixels is too small")
        if self.session_idle_minutes < 1 or self.lockout_failures < 1:
            raise ValueError("session_idle_minutes and lockout_failures must be >= 1")


@dataclass
class Config:
    """Everything start-up needs, read once."""

    path: Path | None
    home: Path
    database_url: str
    storage_url: str
    core: CoreSettings
    enabled: list[str]
    plugin_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    # How ``path`` was found: "BINGAN_CONFIG", "BINGAN_HOME", "installed default" or "given"
    # (passed to load_config).
    source: str = "given"
    # BINGAN_REPLICA_URL: a second blob store (another disk or bucket) written on every put;
    # empty: no replica.
    replica_url: str = ""

    def with_enabled(self, enabled: list[str]) -> Config:
        """A copy with another set of enabled plugins (tests, ``plugins`` command)."""
        return Config(
            self.path, self.home, self.database_url, self.storage_url, self.core,
            list(enabled), dict(self.plugin_settings), self.source, self.replica_url,
        )


def default_config_path() -> Path:
    """The plugins.toml installed with core (in a checkout: the repository's plugins.toml)."""
    return Path(__file__).parent / "data" / "plugins.toml"


def default_home(env: dict[str, str]) -> Path:
    """The data folder when BINGAN_HOME is not set: ``bingan`` in the user's data folder
    (``$XDG_DATA_HOME``, else ``~/.local/share``; for a service account, under its home such
    as /var/lib/bingan). Never the working directory: a command started elsewhere must find
    the same database, blobs and keys."""
    base = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME") or "~") / ".local" / "share")
    return Path(base).expanduser() / "bingan"


def home_folder(env: dict[str, str]) -> Path:
    """BINGAN_HOME, else ``default_home``; absolute."""
    return Path(env.get("BINGAN_HOME") or default_home(env)).expanduser().resolve()


def find_config(env: dict[str, str]) -> tuple[Path, str]:
    """(plugins.toml to read, how it was found); see the module docstring."""
    if env.get("BINGAN_CONFIG"):
        return Path(env["BINGAN_CONFIG"]).expanduser().absolute(), "BINGAN_CONFIG"
    p = home_folder(env) / "plugins.toml"
    if p.is_file():
        return p, "BINGAN_HOME"
    return default_config_path(), "installed default"


def _installed_plugins() -> set[str]:
    from importlib.metadata import entry_points

    return {ep.name for ep in entry_points(group="bingan")}


def _resolve_secrets(table: dict[str, Any], where: str, env: dict[str, str]) -> dict[str, Any]:
    """Replace ``{ env = "NAME" }`` values by the environment's, in nested tables too (a
    connection's URL under ``[plugins.his_sql.sources.main]``, a key per EMR system)."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict) and set(value) == {"env"}:
            name = value["env"]
            if name not in env:
                raise ConfigError(
                    f"plugins.toml [{where}] {key}: environment variable {name} is not set"
                )
            out[key] = env[name]
        elif isinstance(value, dict):
            out[key] = _resolve_secrets(value, f"{where}.{key}", env)
        else:
            out[key] = value
    return out


def validate_settings(where: str, schema: type | None, table: dict[str, Any],
                      env: dict[str, str] | None = None) -> Any:
    """Validate one settings table against a msgspec Struct; errors name ``where`` and the key."""
    table = _resolve_secrets(table, where, dict(os.environ if env is None else env))
    if schema is None:
        if table:
            raise ConfigError(
                f"plugins.toml [{where}] {min(table)}: this plugin takes no settings"
            )
        return None
    try:
        return msgspec.convert(table, schema, strict=False)
    except msgspec.ValidationError as exc:
        msg = str(exc)
        m = re.search(r"at `\$\.([^`\[]+)", msg)
        key = m.group(1) if m else ""
        m2 = re.search(r"unknown field `([^`]+)`", msg)
        if m2:
            key = m2.group(1)
        first = msg.split(" ", 1)[0]
        if not key and first in getattr(schema, "__struct_fields__", ()):
            key = first  # a __post_init__ check names its field first
        detail = re.sub(r"\s*-\s*at `[^`]*`", "", msg)
        raise ConfigError(f"plugins.toml [{where}] {key}: {detail}".replace("  ", " ")) from exc
    except ValueError as exc:  # __post_init__ checks
        text = str(exc)
        key = text.split(" ", 1)[0]
        raise ConfigError(f"plugins.toml [{where}] {key}: {text}") from exc


def _outside_home(core: CoreSettings, home: Path, env: dict[str, str]) -> None:
    """Resolve ``key_dir`` (default BINGAN_KEY_DIR, else ~/.config/bingan) and
    ``audit_anchor_file``; both must lie outside BINGAN_HOME (M3 of issue 9)."""
    if not core.key_dir:
        base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or "~") / ".config")
        core.key_dir = env.get("BINGAN_KEY_DIR") or str(Path(base) / "bingan")
    for key in ("key_dir", "audit_anchor_file"):
        value = getattr(core, key)
        if not value:
            continue
        p = Path(value).expanduser().resolve()
        if p == home or home in p.parents:
            raise ConfigError(f"plugins.toml [core] {key}: {p} is inside BINGAN_HOME ({home}); "
                              "it must be elsewhere, so the data folder alone cannot rewrite "
                              "the audit chain")
        setattr(core, key, str(p))


def load_config(path: str | Path | None = None, env: dict[str, str] | None = None) -> Config:
    """Read plugins.toml and the environment; raise ConfigError on any bad setting."""
    env = dict(os.environ if env is None else env)
    if path is None:
        p, source = find_config(env)
    else:
        p, source = Path(path), "given"
    if not p.is_file():
        where = " (BINGAN_CONFIG)" if source == "BINGAN_CONFIG" else (
            " (installed default: the installation is incomplete)"
            if source == "installed default" else "")
        raise ConfigError(f"{p}: configuration file not found{where}")
    try:
        data: dict[str, Any] = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from exc
    unknown = set(data) - {"core", "plugins"}
    if unknown:
        raise ConfigError(f"plugins.toml: unknown table [{min(unknown)}]")
    core = validate_settings("core", CoreSettings, data.get("core", {}), env)
    plugins = data.get("plugins", {})
    enabled = plugins.get("enabled", [])
    if not isinstance(enabled, list) or not all(isinstance(x, str) for x in enabled):
        raise ConfigError("plugins.toml [plugins] enabled: must be a list of plugin names")
    settings = {k: v for k, v in plugins.items() if k != "enabled"}
    if source == "installed default":
        installed = _installed_plugins()
        enabled = [name for name in enabled if name in installed]
        settings = {k: v for k, v in settings.items() if k in installed}
    for name, table in settings.items():
        if not isinstance(table, dict):
            raise ConfigError(f"plugins.toml [plugins] {name}: must be a table of settings")
    home = home_folder(env)
    _outside_home(core, home, env)
    db_url = env.get("BINGAN_DATABASE_URL") or f"sqlite:///{home / 'bingan.sqlite3'}"
    storage_url = env.get("BINGAN_STORAGE_URL") or ""
    return Config(
        path=p, home=home, database_url=db_url, storage_url=storage_url,
        core=core, enabled=list(enabled), plugin_settings=settings, source=source,
        replica_url=env.get("BINGAN_REPLICA_URL") or "",
    )

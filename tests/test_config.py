"""plugins.toml and environment: validated at start, errors name the plugin/section and key."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from bingan.core.config import ConfigError, load_config


def _write(tmp_path, text: str):
    p = tmp_path / "plugins.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_defaults_and_environment(tmp_path):
    cfg = load_config(_write(tmp_path, "[plugins]\nenabled = []\n"),
                      env={"BINGAN_HOME": str(tmp_path / "h")})
    assert cfg.home == (tmp_path / "h").resolve()
    assert cfg.database_url == f"sqlite:///{tmp_path / 'h' / 'bingan.sqlite3'}"
    assert cfg.storage_url == ""
    assert cfg.core.session_idle_minutes == 30 and cfg.core.lockout_failures == 5
    cfg2 = load_config(_write(tmp_path, ""), env={
        "BINGAN_HOME": str(tmp_path), "BINGAN_DATABASE_URL": "postgresql://x@h/db",
        "BINGAN_STORAGE_URL": "file:///srv/blobs"})
    assert cfg2.database_url == "postgresql://x@h/db" and cfg2.storage_url == "file:///srv/blobs"


@pytest.mark.parametrize("text, needle", [
    ("[core]\nsession_idle_minutes = 'soon'\n", "[core] session_idle_minutes"),
    ("[core]\nno_such_key = 1\n", "[core] no_such_key"),
    ("[core]\nmrn_pattern = '(['\n", "[core] mrn_pattern"),
    ("[core]\ncookie_secure = 'sometimes'\n", "[core] cookie_secure"),
    ("[core]\naudit_key = { env = 'BINGAN_NOT_SET_ANYWHERE' }\n", "BINGAN_NOT_SET_ANYWHERE"),
    ("[plugins]\nenabled = 'capture'\n", "[plugins] enabled"),
    ("[plugins]\ncapture = 3\n", "[plugins] capture"),
    ("[pluginz]\n", "unknown table [pluginz]"),
    ("[core\n", "not valid TOML"),
])
def test_bad_settings_name_the_key(tmp_path, text, needle):
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, text), env={"BINGAN_HOME": str(tmp_path)})
    assert needle in str(err.value)


def test_secret_from_env(tmp_path):
    cfg = load_config(_write(tmp_path, "[core]\naudit_key = { env = 'MY_AUDIT_KEY' }\n"),
                      env={"BINGAN_HOME": str(tmp_path), "MY_AUDIT_KEY": "k" * 40})
    assert cfg.core.audit_key == "k" * 40


def test_missing_explicit_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml", env={})


def test_config_discovery_order(tmp_path):
    """BINGAN_CONFIG, else $BINGAN_HOME/plugins.toml, else the installed default; never the
    working directory."""
    from bingan.core.config import default_config_path, find_config

    assert find_config({"HOME": str(tmp_path / "nobody")}) == (default_config_path(),
                                                                "installed default")
    home = tmp_path / "home"
    home.mkdir()
    assert find_config({"BINGAN_HOME": str(home)})[1] == "installed default"
    (home / "plugins.toml").write_text("", encoding="utf-8")
    assert find_config({"BINGAN_HOME": str(home)}) == (home / "plugins.toml", "BINGAN_HOME")
    other = tmp_path / "other.toml"
    assert find_config({"BINGAN_HOME": str(home), "BINGAN_CONFIG": str(other)}) == (
        other, "BINGAN_CONFIG")
    with pytest.raises(ConfigError, match=r"other.toml: configuration file not found \(BINGAN"):
        load_config(env={"BINGAN_HOME": str(home), "BINGAN_CONFIG": str(other)})


def test_default_home_is_the_users_data_folder_not_the_working_directory(tmp_path,
                                                                         monkeypatch):
    """Without BINGAN_HOME the data folder is $XDG_DATA_HOME/bingan, else
    ~/.local/share/bingan: the same from any directory; its plugins.toml is found there."""
    from bingan.core.config import find_config

    monkeypatch.chdir(tmp_path)
    user = tmp_path / "user"
    cfg = load_config(env={"HOME": str(user)})
    assert cfg.home == user / ".local" / "share" / "bingan"
    assert cfg.database_url == f"sqlite:///{cfg.home / 'bingan.sqlite3'}"
    xdg = tmp_path / "xdg"
    assert load_config(env={"HOME": str(user), "XDG_DATA_HOME": str(xdg)}).home == xdg / "bingan"
    assert load_config(env={"HOME": str(user), "BINGAN_HOME": "rel"}).home == tmp_path / "rel"
    # the audit key's default folder (~/.config/bingan) stays outside the default home
    assert cfg.home not in Path(cfg.core.key_dir).parents
    (cfg.home).mkdir(parents=True)
    (cfg.home / "plugins.toml").write_text('[plugins]\nenabled = []\n', encoding="utf-8")
    assert find_config({"HOME": str(user)}) == (cfg.home / "plugins.toml", "BINGAN_HOME")
    assert load_config(env={"HOME": str(user)}).enabled == []


def test_installed_default_enables_the_installed_standard_plugins(tmp_path):
    """The default shipped with core is the repository's plugins.toml; of the plugins it
    enables, those not installed are left out (a hospital's own file that names one is an
    error, see core.plugins)."""
    from importlib.metadata import entry_points

    from bingan.core.config import default_config_path
    from support import REPO

    assert default_config_path().read_bytes() == (REPO / "plugins.toml").read_bytes()
    cfg = load_config(env={"BINGAN_HOME": str(tmp_path)})
    assert cfg.source == "installed default" and cfg.path == default_config_path()
    full = load_config(REPO / "plugins.toml", env={"BINGAN_HOME": str(tmp_path)})
    installed = {ep.name for ep in entry_points(group="bingan")}
    assert cfg.enabled == [n for n in full.enabled if n in installed]
    assert cfg.enabled  # this checkout installs them all


def test_repo_plugins_toml_is_valid():
    from support import REPO

    cfg = load_config(REPO / "plugins.toml", env={"BINGAN_HOME": "/tmp/x"})
    assert cfg.core.hospital_name


class Src(msgspec.Struct):
    url: str


class S(msgspec.Struct):
    sources: dict[str, Src]


def test_secrets_in_nested_tables():
    """``{ env = ... }`` works inside a plugin's nested tables (a HIS connection per source,
    a key per EMR system); a missing variable names the nested table."""
    from bingan.core.config import validate_settings

    got = validate_settings("plugins.x", S, {"sources": {"main": {"url": {"env": "HIS_URL"}}}},
                            env={"HIS_URL": "mysql+pymysql://ro@his/his"})
    assert got.sources["main"].url == "mysql+pymysql://ro@his/his"
    with pytest.raises(ConfigError, match=r"\[plugins.x.sources.main\] url: .*HIS_URL"):
        validate_settings("plugins.x", S, {"sources": {"main": {"url": {"env": "HIS_URL"}}}},
                          env={})

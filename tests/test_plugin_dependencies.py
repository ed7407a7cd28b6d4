"""Plugin-to-plugin dependencies are declared twice and must agree: in the plugin's pyproject
(``bingan-capture`` among ``dependencies``, so pip installs it) and in its metadata
(``PluginInfo.depends_on``, so core refuses to start it without the other enabled). Every import
of another plugin's package in the plugin's code must be one of them; its tests may also import a
plugin named in its ``test`` extra (an integration test of the two, installed only to test)."""

from __future__ import annotations

import ast
import importlib
import re
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROJECTS = sorted(p.parent for base in ("plugins", "integrations")
                  for p in (REPO / base).glob("*/pyproject.toml"))


def _project(folder: Path) -> dict:
    return tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _requirement_name(req: str) -> str:
    return re.split(r"[\s<>=!~;\[(]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


# distribution name -> (plugin name, top-level package) for every plugin of the repository
PLUGINS: dict[str, tuple[str, str]] = {}
for _folder in PROJECTS:
    _proj = _project(_folder)
    for _name, _module in _proj.get("entry-points", {}).get("bingan", {}).items():
        PLUGINS[_proj["name"].lower()] = (_name, _module.split(".")[0].split(":")[0])
PACKAGE_TO_PLUGIN = {pkg: name for name, pkg in PLUGINS.values()}


def _imported_plugins(folder: Path, own: str, tests: bool | None = None) -> dict[str, str]:
    """Other plugins imported under ``folder`` -> one file that imports it; only in its tests
    folder (``tests=True``), only outside it (False), or anywhere (None)."""
    found: dict[str, str] = {}
    for path in folder.rglob("*.py"):
        if tests is not None and (path.relative_to(folder).parts[0] == "tests") != tests:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                plugin = PACKAGE_TO_PLUGIN.get(name.split(".")[0])
                if plugin and plugin != own:
                    found.setdefault(plugin, str(path.relative_to(REPO)))
    return found


def test_every_plugin_folder_is_a_plugin():
    assert len(PLUGINS) == len(PROJECTS) >= 10


@pytest.mark.parametrize("folder", PROJECTS, ids=[p.name for p in PROJECTS])
def test_dependencies_declared_in_pyproject_and_metadata_agree(folder):
    proj = _project(folder)
    name, package = PLUGINS[proj["name"].lower()]
    in_pyproject = sorted(PLUGINS[r][0] for r in map(_requirement_name, proj["dependencies"])
                          if r in PLUGINS)
    info = importlib.import_module(package).PLUGIN
    assert info.name == name
    assert sorted(info.depends_on) == in_pyproject, (
        f"{name}: PluginInfo.depends_on {sorted(info.depends_on)} but pyproject names "
        f"{in_pyproject}")
    assert "bingan" in map(_requirement_name, proj["dependencies"])
    imported = _imported_plugins(folder, name, tests=False)
    undeclared = {p: f for p, f in imported.items() if p not in info.depends_on}
    assert not undeclared, f"{name} imports plugins it does not declare: {undeclared}"
    test_extra = {PLUGINS[r][0] for r in map(_requirement_name,
                                            proj.get("optional-dependencies", {}).get("test", []))
                  if r in PLUGINS}
    in_tests = _imported_plugins(folder, name, tests=True)
    undeclared = {p: f for p, f in in_tests.items()
                  if p not in info.depends_on and p not in test_extra}
    assert not undeclared, (f"{name}'s tests import plugins neither a dependency nor in its "
                            f"test extra: {undeclared}")


def test_core_refuses_a_plugin_whose_dependency_is_not_enabled(tmp_path):
    """What the metadata is for: qc without capture does not start."""
    from bingan.core.config import ConfigError
    from bingan.core.runtime import build_runtime
    from support import make_config

    with pytest.raises(ConfigError, match="plugin qc: depends on plugin capture"):
        build_runtime(make_config(tmp_path / "h", f"sqlite:///{tmp_path}/x.db", ["qc"]))

"""The shape DESIGN.md asks for: top-level layout, core imports no plugin, plugins import no
other plugin, each plugin is a complete distribution."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from support import REPO

ALLOWED_TOP = {"core", "hooks", "plugins", "integrations", "themes", "tests", "pyproject.toml",
               "plugins.toml", "README.md", "Makefile", "docs", "bench", ".ci", "package.json",
               "package-lock.json", ".gitignore", "LICENSE", "setup.py",
               # core's test kit (installed as bingan.testing, a pytest plugin) and the shared
               # npm build step of core and plugins (its own small distribution, bingan-build)
               "testing", "build-helper"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


def _full_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def test_core_hooks_themes_are_imported_under_the_bingan_namespace():
    """core/, hooks/ and themes/ install as bingan.core, bingan.hooks and bingan.themes; a bare
    top-level ``core`` would collide with any other package so named in a hospital's Python."""
    offenders = []
    for py in REPO.rglob("*.py"):
        if {".venv", "node_modules", ".git"} & set(py.relative_to(REPO).parts):
            continue
        bare = {m for m in _imports(py) if m in ("core", "hooks", "themes")}
        if bare:
            offenders.append(f"{py.relative_to(REPO)} imports {sorted(bare)}")
    assert not offenders, offenders


def test_every_distribution_declares_the_licence():
    assert (REPO / "LICENSE").read_text(encoding="utf-8").startswith("Apache License")
    for pyproject in [REPO / "pyproject.toml", *(d / "pyproject.toml" for d in _plugin_dirs())]:
        meta = tomllib.loads(pyproject.read_text())
        assert meta["project"].get("license") == "Apache-2.0", pyproject


def _plugin_dirs() -> list[Path]:
    return sorted(p.parent for p in REPO.glob("plugins/*/pyproject.toml")) + sorted(
        p.parent for p in REPO.glob("integrations/*/pyproject.toml"))


def test_front_end_builds_share_one_build_step():
    """Every distribution that ships npm files (a package.json beside its pyproject) builds
    them through the shared bingan_build step (build-helper/), declared as a build
    requirement: no copy of the npm logic in a setup.py of its own."""
    dists = [REPO, *_plugin_dirs()]
    with_npm = [d for d in dists if (d / "package.json").exists()]
    assert REPO in with_npm and len(with_npm) >= 2
    for d in with_npm:
        setup_py = (d / "setup.py").read_text(encoding="utf-8")
        assert "from bingan_build import setup_with_npm" in setup_py, d
        assert "subprocess" not in setup_py and "npm" not in _imports(d / "setup.py"), d
        requires = tomllib.loads((d / "pyproject.toml").read_text())["build-system"]["requires"]
        assert "bingan-build" in requires, d
    for d in dists:
        if (d / "setup.py").exists():
            assert d in with_npm, f"{d}: a setup.py without package.json"


def test_top_level_layout():
    import subprocess

    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True).stdout
    tops = {line.split("/")[0] for line in tracked.splitlines() if line}
    assert tops <= ALLOWED_TOP, tops - ALLOWED_TOP


def test_core_and_hooks_import_no_plugin():
    offenders = []
    for base in ("core", "hooks"):
        for py in (REPO / base).rglob("*.py"):
            bad = {m for m in _imports(py) if m.startswith("bingan_") or m in (
                "plugins", "integrations")}
            if base == "hooks":
                bad |= {m for m in _full_imports(py) if m == "bingan.core"
                        or m.startswith("bingan.core.")}
            if bad:
                offenders.append(f"{py.relative_to(REPO)} imports {sorted(bad)}")
    assert not offenders, offenders


def test_plugins_import_no_other_plugin_and_declare_metadata():
    for d in _plugin_dirs():
        meta = tomllib.loads((d / "pyproject.toml").read_text())
        name = d.name
        pkg = f"bingan_{name.replace('-', '_')}"
        assert meta["project"]["name"] == f"bingan-{name}"
        eps = meta["project"]["entry-points"]["bingan"]
        assert eps == {name: pkg}, eps
        assert (d / "README.md").exists(), f"{d} has no README.md"
        import importlib

        # a plugin may import a plugin it declares it depends on (a scanning adapter hands
        # files to capture's receive and returns capture's CaptureSource); no other
        deps = {f"bingan_{n.replace('-', '_')}"
                for n in importlib.import_module(pkg).PLUGIN.depends_on}
        # (its tests may also import its `test` extra: tests/test_plugin_dependencies.py)
        for py in d.rglob("*.py"):
            if py.relative_to(d).parts[0] == "tests":
                continue
            allowed = {pkg} | deps | {"bingan_build"}  # the shared build step (setup.py)
            others = {m for m in _imports(py) if m.startswith("bingan_") and m not in allowed}
            assert not others, f"{py.relative_to(REPO)} imports another plugin: {others}"


def test_plugins_never_look_up_the_runtime():
    """The runtime is handed to every hook, task handler and job that needs it (``rt``); a
    plugin that fetches it from ``bingan.core.runtime`` (``current()``, a service locator)
    works only in a process where core happened to set it."""
    offenders = []
    for d in _plugin_dirs():
        for py in d.rglob("*.py"):
            if "tests" in py.relative_to(d).parts[:1]:
                continue
            tree = ast.parse(py.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                names: set[str] = set()
                if isinstance(node, ast.ImportFrom) and node.module == "bingan.core.runtime":
                    names = {a.name for a in node.names}
                elif isinstance(node, ast.Attribute) and node.attr in ("current", "set_current"):
                    value = node.value
                    if isinstance(value, ast.Name) and value.id == "runtime":
                        names = {node.attr}
                if names & {"current", "set_current"}:
                    offenders.append(f"{py.relative_to(REPO)}:{node.lineno}")
    assert not offenders, offenders


def test_no_machine_paths_in_repo():
    import subprocess

    out = subprocess.run(["git", "grep", "-nI", "-e", "/work/", "-e", "/root/", "--", "."],
                         cwd=REPO, capture_output=True, text=True).stdout
    hits = [line for line in out.splitlines() if not line.startswith("tests/test_layout.py")]
    assert not hits, hits

"""The build step of every bingan distribution that serves front-end files from npm (core's
htmx; a plugin's ECharts ...): ``npm ci`` exactly as package-lock.json says, whose
``postinstall`` copies the files into the package (never committed), before setuptools builds
the wheel or sdist. A distribution uses it from its ``setup.py``::

    from bingan_build import setup_with_npm

    setup_with_npm(__file__, "bingan_x/static/vendor/echarts.min.js")

and lists it as a build requirement in its pyproject.toml::

    [build-system]
    requires = ["setuptools>=77", "bingan-build"]

(in this repository pip finds it in the wheelhouse ``make setup`` builds, through
PIP_FIND_LINKS; a hospital's index carries it beside bingan). Metadata stays in pyproject.toml.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

__all__ = ["npm_vendor", "npm_cmdclass", "setup_with_npm"]


def npm_vendor(root: Path, vendored: Sequence[Path], dist: str) -> None:
    """Run ``npm ci`` in ``root`` unless every vendored file exists and is newer than
    package-lock.json; then check each was produced. ``dist`` names the distribution in the
    error a build without npm stops with."""
    lock = root / "package-lock.json"
    if vendored and all(f.exists() and (not lock.exists()
                                        or f.stat().st_mtime >= lock.stat().st_mtime)
                        for f in vendored):
        return
    try:
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=root,
                       check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit(f"building {dist} needs npm (Node.js): {exc}")
    missing = [str(f.relative_to(root)) for f in vendored if not f.exists()]
    if missing:
        raise SystemExit(f"npm ci did not produce {', '.join(missing)}")


def npm_cmdclass(root: Path, vendored: Sequence[Path], dist: str) -> dict[str, type]:
    """setuptools commands ``build_py`` and ``sdist`` that run ``npm_vendor`` first."""

    class BuildPy(build_py):
        def run(self) -> None:
            npm_vendor(root, vendored, dist)
            super().run()

    class Sdist(sdist):
        def run(self) -> None:
            npm_vendor(root, vendored, dist)
            super().run()

    return {"build_py": BuildPy, "sdist": Sdist}


def _dist_name(root: Path) -> str:
    import tomllib

    try:
        return tomllib.loads((root / "pyproject.toml").read_text("utf-8"))["project"]["name"]
    except (OSError, KeyError, ValueError):
        return root.name


def setup_with_npm(setup_file: str, *vendored: str) -> None:
    """``setup()`` for the distribution whose setup.py is ``setup_file``; ``vendored`` are the
    files (relative to it) that package.json's postinstall must produce."""
    root = Path(setup_file).resolve().parent
    if not vendored:
        raise SystemExit("setup_with_npm: name the files npm must produce")
    files = [root / v for v in vendored]
    setup(cmdclass=npm_cmdclass(root, files, _dist_name(root)))

"""Build step of the warehouse plugin: the front-end files it serves (ECharts, at
/static/warehouse/vendor) are fetched from npm when
the package is built, exactly as package-lock.json says, and copied into the package by
package.json's postinstall (copy-vendor.js); they are never committed. Metadata is in
pyproject.toml."""

import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = Path(__file__).resolve().parent
VENDORED = [HERE / "bingan_warehouse" / "static" / "vendor" / "echarts.min.js"]


def npm_vendor() -> None:
    """Run ``npm ci`` here unless every vendored file is newer than package-lock.json."""
    lock = HERE / "package-lock.json"
    if all(f.exists() and (not lock.exists() or f.stat().st_mtime >= lock.stat().st_mtime)
           for f in VENDORED):
        return
    try:
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=HERE,
                       check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit(f"building bingan-warehouse needs npm (Node.js): {exc}")
    missing = [str(f.relative_to(HERE)) for f in VENDORED if not f.exists()]
    if missing:
        raise SystemExit(f"npm ci did not produce {', '.join(missing)}")


class BuildPy(build_py):
    def run(self):
        npm_vendor()
        super().run()


class Sdist(sdist):
    def run(self):
        npm_vendor()
        super().run()


setup(cmdclass={"build_py": BuildPy, "sdist": Sdist})

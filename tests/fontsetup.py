"""Fontconfig setups that hold one font family only, as a fresh machine would (tests of
core.fonts and of what draws Chinese text with it)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from bingan.core import fonts

# what a machine with only that Debian package has: (families, package)
FAMILIES = {
    "wqy": (("WenQuanYi Micro Hei",), "fonts-wqy-microhei"),
    "noto": (("Noto Sans CJK SC", "Noto Serif CJK SC"), "fonts-noto-cjk"),
    "dejavu": (("DejaVu Sans",), "fonts-dejavu-core"),
}


def system_font_files(family: str, package: str) -> list[Path]:
    """The files of a font family under the machine's own fontconfig setup."""
    env = {k: v for k, v in os.environ.items() if k not in ("FONTCONFIG_FILE", "FONTCONFIG_PATH")}
    out = subprocess.run(["fc-list", "-f", "%{file}\n", family], env=env, capture_output=True,
                         text=True, timeout=60, check=False).stdout.split("\n")
    files = sorted({Path(f) for f in out if f})
    if not files:
        pytest.fail(f"{family} is not installed: run `make sysdeps` (Debian package {package})")
    return files


def font_folder(tmp: Path, which: str) -> Path:
    """A folder holding (links to) the files of ``which`` only (see FAMILIES)."""
    families, package = FAMILIES[which]
    folder = tmp / f"fonts-{which}"
    folder.mkdir(exist_ok=True)
    for family in families:
        for f in system_font_files(family, package):
            if not (folder / f.name).exists():
                (folder / f.name).symlink_to(f)
    return folder


def fontconfig_setup(tmp: Path, folder: Path | None) -> Path:
    """A fonts.conf whose only font folder is ``folder`` (None: a folder without fonts)."""
    if folder is None:
        folder = tmp / "empty-fonts"
        folder.mkdir(exist_ok=True)
    conf = tmp / "fonts.conf"
    conf.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n'
        f"  <dir>{folder}</dir>\n  <cachedir>{tmp / 'fc-cache'}</cachedir>\n</fontconfig>\n",
        encoding="utf-8")
    return conf


def only_fonts(tmp_path, monkeypatch):
    """For a fixture: yields only("wqy" | "noto" | "dejavu" | None), after which this process
    sees only that font folder (fontconfig and core.fonts both)."""
    def use(which):
        folder = None if which is None else font_folder(tmp_path, which)
        monkeypatch.setenv("FONTCONFIG_FILE", str(fontconfig_setup(tmp_path, folder)))
        fonts.clear_cache()

    yield use
    fonts.clear_cache()  # monkeypatch then restores the process's own FONTCONFIG_FILE

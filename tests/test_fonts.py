"""core.fonts: the CJK font is chosen by what it draws, under any fontconfig setup.

Each test builds a fontconfig setup (FONTCONFIG_FILE naming a fonts.conf with one font folder)
that holds only WenQuanYi Micro Hei, only Noto CJK, or no CJK font at all, as a fresh machine
would (tests/fontsetup.py).
The font files come from the Debian packages fonts-wqy-microhei and fonts-noto-cjk (`make
sysdeps` installs both).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from bingan.core import fonts
from fontsetup import font_folder, fontconfig_setup, only_fonts


@pytest.fixture
def only(tmp_path, monkeypatch):
    yield from only_fonts(tmp_path, monkeypatch)


def _ink_boxes(text: str, font) -> list[bytes]:
    """Each character drawn alone, as bytes (equal bytes: the same glyph)."""
    out = []
    for ch in text:
        im = Image.new("L", (60, 60), 0)
        ImageDraw.Draw(im).text((5, 5), ch, font=font, fill=255)
        out.append(im.tobytes())
    return out


def test_only_wenquanyi(only):
    """Only WenQuanYi Micro Hei: every wish (sans, serif, bold) gets it, and it draws
    distinct glyphs where the name-based lookup drew empty boxes."""
    only("wqy")
    for serif, bold in ((False, False), (True, False), (False, True)):
        face = fonts.cjk_font(serif=serif, bold=bold)
        assert face.family.startswith("WenQuanYi"), face
        assert face.simplified
    glyphs = _ink_boxes("病案首页", fonts.truetype(40))
    assert len(set(glyphs)) == 4 and bytes(3600) not in glyphs
    assert [f.family for f in fonts.available()] and all(
        f.family.startswith("WenQuanYi") for f in fonts.available())


def test_only_noto(only):
    """Only Noto CJK (every region and weight): the Simplified Chinese faces are chosen, serif
    and bold when asked."""
    only("noto")
    assert fonts.cjk_font().family == "Noto Sans CJK SC"
    assert fonts.cjk_font().weight == fonts.REGULAR
    assert fonts.cjk_font(serif=True).family == "Noto Serif CJK SC"
    bold = fonts.cjk_font(bold=True)
    assert bold.family == "Noto Sans CJK SC" and bold.weight == fonts.BOLD
    glyphs = _ink_boxes("病案首页", fonts.truetype(40, serif=True))
    assert len(set(glyphs)) == 4 and bytes(3600) not in glyphs


def test_no_cjk_font_names_the_debian_package(only):
    """DejaVu only (what fontconfig answered for "Noto Sans CJK SC" on the fresh machine), or
    no font at all: a clear error naming the package, from the module and from the check
    `make sysdeps` runs."""
    for which in ("dejavu", None):
        only(which)
        with pytest.raises(fonts.FontMissing, match="fonts-noto-cjk"):
            fonts.cjk_font()
        res = subprocess.run([sys.executable, "-m", "bingan.core.fonts"], capture_output=True,
                             text=True, timeout=120, check=False)
        assert res.returncode == 1 and "apt-get install fonts-noto-cjk" in res.stderr


def test_a_font_that_claims_chinese_but_draws_boxes_is_refused(only, tmp_path):
    """The glyph check, not the family name or fontconfig's word, decides: DejaVu draws its
    .notdef box for 病, so it is refused as a configured font file too."""
    only("dejavu")
    dejavu = font_folder(tmp_path, "dejavu") / "DejaVuSans.ttf"
    assert not fonts.draws(str(dejavu), 0)
    assert fonts.draws(str(dejavu), 0, "Medical 123")
    with pytest.raises(fonts.FontMissing, match="fonts-noto-cjk"):
        fonts.font_file(str(dejavu))
    with pytest.raises(fonts.FontMissing, match="不存在"):
        fonts.font_file(str(dejavu) + ".missing")
    wqy = font_folder(tmp_path, "wqy") / "wqy-microhei.ttc"
    assert fonts.font_file(str(wqy)).family.startswith("WenQuanYi")


def test_sysdeps_checks_the_glyphs(tmp_path):
    """`make sysdeps` decides with the same check: under a DejaVu-only setup it says the CJK
    font is missing (it does not accept any font fontconfig lists)."""
    repo = Path(__file__).resolve().parents[1]
    text = (repo / "Makefile").read_text(encoding="utf-8")
    assert "bingan.core.fonts" in text
    folder = font_folder(tmp_path, "dejavu")
    env = dict(os.environ, FONTCONFIG_FILE=str(fontconfig_setup(tmp_path, folder)))
    res = subprocess.run(["make", "-s", "-C", str(repo), "sysdeps-check"], env=env,
                         capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode != 0 and "fonts-noto-cjk" in res.stdout + res.stderr


def test_server_warns_at_start_when_no_font_draws_chinese(tmp_path):
    """`bingan serve` says at start-up what cover sheets and watermarks will lack."""
    import socket

    folder = font_folder(tmp_path, "dejavu")
    cfg = tmp_path / "plugins.toml"
    cfg.write_text("[plugins]\nenabled = []\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BINGAN_")}
    env.update(FONTCONFIG_FILE=str(fontconfig_setup(tmp_path, folder)), BINGAN_CONFIG=str(cfg),
               BINGAN_HOME=str(tmp_path / "home"))
    bingan = str(Path(sys.executable).with_name("bingan"))
    subprocess.run([bingan, "db", "upgrade"], env=env, check=True, capture_output=True,
                   timeout=300)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([bingan, "serve", "--port", str(port), "--no-scheduler"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "已启动" in server.stdout.readline()
    finally:
        server.terminate()
        _, err = server.communicate(timeout=60)
    assert "警告：" in err and "apt-get install fonts-noto-cjk" in err

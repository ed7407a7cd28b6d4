"""The CJK font everything that draws Chinese text uses (cover sheets, watermarks, the demo's and
the tests' generated pages).

A font is chosen by what it can draw, never by family name: asking fontconfig for "Noto Sans CJK
SC" on a machine without it answers with DejaVu, which draws every Chinese character as the same
empty box (and OCR then reads nothing). So: fontconfig lists the fonts that claim Chinese
(``fc-list :lang=zh``), and a font is taken only when it really draws the characters of
``SAMPLE`` (each renders with ink, unlike the font's .notdef box). Any installed CJK family does
(Noto CJK, Source Han, WenQuanYi, Droid Sans Fallback, ...); among them Simplified Chinese faces
come first, then the wanted style (serif or not) and weight. No such font: ``FontMissing``, whose
message names the Debian package to install. ``python -m bingan.core.fonts`` prints the choice or
that message (``make sysdeps`` runs it).
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

# Characters every font we use must draw: record words, digits of a form, full-width punctuation.
SAMPLE = "病案首页出院记录姓名性别签名医师诊断手术住院号科室年月日：（）"
PACKAGE = "fonts-noto-cjk"
ALTERNATIVE = "fonts-wqy-microhei"
# fontconfig weights (fc-pattern): regular 80, medium 100, bold 200
REGULAR, BOLD = 80, 200
_SERIF_WORDS = ("serif", "song", "ming", "宋", "明", "fangsong", "kai", "楷")
_SIMPLIFIED = (" sc", " cn", " gb", "简", "zenhei", "microhei", "wenquanyi", "droid sans fallback")


class FontMissing(RuntimeError):
    """No installed font draws Chinese; the message says which Debian package to install."""


@dataclass(frozen=True)
class CJKFont:
    """One face of a font file that draws Chinese."""

    path: str
    index: int  # face in a .ttc collection
    family: str
    weight: int  # fontconfig weight (80 regular, 200 bold)
    serif: bool
    simplified: bool  # made for Simplified Chinese (glyph shapes as printed in mainland China)

    def truetype(self, size: int) -> ImageFont.FreeTypeFont:
        return truetype(size, self)


@dataclass(frozen=True)
class _Listed:
    path: str
    index: int
    families: tuple[str, ...]
    weight: int


def _fc_list() -> list[_Listed]:
    """Faces fontconfig says support Chinese (under FONTCONFIG_FILE etc. as set)."""
    try:
        out = subprocess.run(
            ["fc-list", "-f", r"%{file}\t%{index}\t%{family}\t%{weight}\n", ":lang=zh"],
            capture_output=True, text=True, timeout=60, check=True).stdout
    except FileNotFoundError as exc:
        raise FontMissing(_message("fontconfig 的 fc-list 命令不存在（Debian 软件包 fontconfig）")) \
            from exc
    except (OSError, subprocess.SubprocessError) as exc:
        raise FontMissing(_message(f"fc-list 运行失败：{exc}")) from exc
    faces = []
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) != 4 or not parts[0]:
            continue
        path, index, families, weight = parts
        try:
            w = int(float(weight)) if weight and not weight.startswith("[") else REGULAR
            faces.append(_Listed(path, int(index or 0), tuple(f for f in families.split(",") if f),
                                 w))
        except ValueError:  # a line fontconfig could not fill in
            continue
    return faces


def _pixels(font: ImageFont.FreeTypeFont, ch: str) -> bytes:
    img = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(img).text((8, 8), ch, font=font, fill=255)
    return img.tobytes()


def draws(path: str, index: int = 0, text: str = SAMPLE) -> bool:
    """Whether the face draws every character of ``text``: each has ink and differs from the
    face's .notdef glyph (what it draws for a code point no font has)."""
    try:
        font = ImageFont.truetype(path, 40, index=index)
    except OSError:
        return False
    notdef = _pixels(font, "\U0010fffd")
    blank = bytes(64 * 64)
    for ch in dict.fromkeys(text):
        if ch.isspace():
            continue
        px = _pixels(font, ch)
        if px == blank or px == notdef:
            return False
    return True


def _is_serif(families: tuple[str, ...]) -> bool:
    names = " ".join(families).lower()
    return any(w in names for w in _SERIF_WORDS) and "sans" not in names


def _simplified(families: tuple[str, ...]) -> bool:
    names = " " + " ".join(families).lower()
    return any(w in names for w in _SIMPLIFIED)


def _message(why: str) -> str:
    return (f"没有可以画出中文的字体：{why}。请安装 Debian 软件包 {PACKAGE}（或 {ALTERNATIVE}）："
            f"apt-get install {PACKAGE}  (no installed font draws Chinese; install the Debian "
            f"package {PACKAGE} or {ALTERNATIVE})")


@functools.lru_cache(maxsize=1)
def _candidates() -> tuple[CJKFont, ...]:
    """The faces fontconfig lists for Chinese (not yet checked), Simplified Chinese regular sans
    first."""
    faces: dict[tuple[str, int], CJKFont] = {}
    for f in _fc_list():
        if (f.path, f.index) not in faces and os.path.isfile(f.path):
            faces[f.path, f.index] = CJKFont(f.path, f.index, f.families[0] if f.families else "",
                                             f.weight, _is_serif(f.families),
                                             _simplified(f.families))
    return tuple(sorted(faces.values(), key=lambda f: (
        not f.simplified, f.serif, abs(f.weight - REGULAR), f.path, f.index)))


@functools.lru_cache(maxsize=256)
def _draws(face: CJKFont) -> bool:
    return draws(face.path, face.index)


def _none_draws(listed: int) -> FontMissing:
    return FontMissing(_message(
        f"fontconfig（fc-list :lang=zh）列出的 {listed} 个字体都画不出“{SAMPLE[:4]}”等汉字"
        if listed else "fontconfig（fc-list :lang=zh）没有列出任何中文字体"))


def available() -> list[CJKFont]:
    """Every installed face that draws ``SAMPLE``, best first for regular sans text."""
    faces = [f for f in _candidates() if _draws(f)]
    if not faces:
        raise _none_draws(len(_candidates()))
    return faces


@functools.lru_cache(maxsize=8)
def cjk_font(serif: bool = False, bold: bool = False) -> CJKFont:
    """The best installed face that draws Chinese: Simplified Chinese first, then the wanted
    style and weight when one is installed (WenQuanYi alone serves every wish).

    Raises FontMissing (naming the Debian package) when no installed font draws Chinese.
    """
    want = BOLD if bold else REGULAR
    listed = _candidates()
    rank = {f: i for i, f in enumerate(listed)}
    for face in sorted(listed, key=lambda f: (not f.simplified, f.serif != serif,
                                              abs(f.weight - want), rank[f])):
        if _draws(face):
            return face
    raise _none_draws(len(listed))


def font_file(path: str, index: int | None = None) -> CJKFont:
    """A configured font file (a plugin setting), checked like the installed ones; with no
    ``index``, the first face of a collection that draws Chinese (a Simplified one first)."""
    if not os.path.isfile(path):
        raise FontMissing(_message(f"字体文件 {path} 不存在"))
    indexes = [index] if index is not None else list(range(32))
    found: list[CJKFont] = []
    for i in indexes:
        try:
            face = ImageFont.truetype(path, 12, index=i)
        except OSError:
            break
        family = face.getname()[0] or ""
        if draws(path, i):
            found.append(CJKFont(path, i, family, REGULAR, _is_serif((family,)),
                                 _simplified((family,))))
    if not found:
        raise FontMissing(_message(f"字体文件 {path} 画不出“{SAMPLE[:4]}”等汉字"))
    return min(found, key=lambda f: (not f.simplified, f.serif, f.index))


@functools.lru_cache(maxsize=128)
def truetype(size: int, face: CJKFont | None = None, *, serif: bool = False,
             bold: bool = False) -> ImageFont.FreeTypeFont:
    """A Pillow font of ``size`` pixels that draws Chinese (``face``, else ``cjk_font``)."""
    face = face or cjk_font(serif=serif, bold=bold)
    return ImageFont.truetype(face.path, size, index=face.index)


def clear_cache() -> None:
    """Forget the choice (after fonts were installed, or FONTCONFIG_FILE changed)."""
    _candidates.cache_clear()
    _draws.cache_clear()
    cjk_font.cache_clear()
    truetype.cache_clear()


def main() -> int:
    try:
        faces = available()
    except FontMissing as exc:
        print(exc, file=sys.stderr)
        return 1
    for label, face in (("sans", cjk_font()), ("serif", cjk_font(serif=True)),
                        ("bold", cjk_font(bold=True))):
        print(f"{label:<6} {face.family} ({face.path}, face {face.index})")
    print(f"{len(faces)} faces draw Chinese")
    return 0


if __name__ == "__main__":
    sys.exit(main())

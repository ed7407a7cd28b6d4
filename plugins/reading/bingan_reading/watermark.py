"""Watermarked page images, burned in on the server (M9).

Every image the viewer gets is made here: the stored page decoded at the requested size, the
reader's staff number, name, the time (to the minute) and the client IP drawn over it as a
tiled, rotated, semi-transparent text, then encoded as a new JPEG. The stored bytes are never
sent.

Speed (bench/serving.py): a 300-DPI A4 page is 2480 x 3508 px; decoding it costs more than the
rest together, so

- sizes are levels of the stored image, width / 2**k (k = 0..4): JPEG's DCT scaling decodes
  straight to 1/2, 1/4, 1/8 (Pillow's ``draft``), 1/16 is one more 2x2 box reduction. A request
  for ``w`` gets the smallest level at least 85 % of ``w``;
- decoded levels stay in a byte-bounded LRU (per process) keyed by (blob, level);
- at most ``page_workers`` requests per process decode and draw at once; more CPU-bound
  threads than cores only take turns on the GIL and stretch every request;
- the watermark mask for (text, size) is cut into 32 x 32 blocks and only the blocks with ink
  are kept (about a fifth of them), so drawing it is a few hundred small ``paste`` calls
  instead of blending every pixel; masks stay in a small LRU, so a reader's pages within one
  minute reuse theirs.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from bingan.core import fonts

log = logging.getLogger("bingan.reading")

BLOCK = 32
LEVELS = 5  # width / 1, 2, 4, 8, 16
class PageImageError(ValueError):
    """The stored page cannot be decoded."""


@dataclass(frozen=True)
class FontChoice:
    path: str | None
    index: int
    cjk: bool


def find_font(configured: str = "") -> FontChoice:
    """The configured font (it must draw Chinese: fonts.FontMissing otherwise), else the
    installed font core.fonts chooses; none: Pillow's own, and names are written in pinyin."""
    if configured:
        face = fonts.font_file(configured)
        return FontChoice(face.path, face.index, True)
    try:
        face = fonts.cjk_font()
    except fonts.FontMissing as exc:
        log.warning("watermark names are written in pinyin: %s", exc)
        return FontChoice(None, 0, False)
    return FontChoice(face.path, face.index, True)


def watermark_text(staff_no: str, name: str, client_ip: str | None, now: dt.datetime,
                   cjk: bool = True, *, tz: dt.tzinfo) -> str:
    """"工号 D0001 陈志远 2026-03-01 17:00 10.0.0.8" (time to the minute, hospital time
    ``tz``)."""
    if not cjk:
        from bingan.core.records import name_pinyin

        name = name_pinyin(name)[0] or name
    when = now.astimezone(tz).strftime("%Y-%m-%d %H:%M")
    label = "工号" if cjk else "ID"
    return f"{label} {staff_no} {name} {when} {client_ip or '-'}"


class _LRU:
    """A thread-safe LRU bounded by a cost (bytes or entries)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0
        self.items: OrderedDict = OrderedDict()
        self.lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key):
        with self.lock:
            hit = self.items.get(key)
            if hit is None:
                self.misses += 1
                return None
            self.items.move_to_end(key)
            self.hits += 1
            return hit[0]

    def put(self, key, value, cost: int = 1) -> None:
        if cost > self.capacity:
            return
        with self.lock:
            old = self.items.pop(key, None)
            if old is not None:
                self.used -= old[1]
            self.items[key] = (value, cost)
            self.used += cost
            while self.used > self.capacity and self.items:
                _, (_, c) = self.items.popitem(last=False)
                self.used -= c


def pick_level(native_width: int, requested: int | None, max_width: int) -> int:
    """The reduction level k (served width = native / 2**k) for a requested width."""
    cap = min(requested or max_width, max_width)
    best = 0
    for k in range(LEVELS):
        w = math.ceil(native_width / 2 ** k)
        if w >= cap * 0.85 or k == 0:
            best = k
        else:
            break
    return best  # a level wider than max_width is scaled down to it by Renderer.base


def decode_level(data: bytes, k: int) -> Image.Image:
    """Decode ``data`` at width / 2**k (RGB)."""
    try:
        im = Image.open(io.BytesIO(data))
        w, h = im.size
        scale = 2 ** k
        if im.format == "JPEG":
            # DCT scaling: decode at 1/2, 1/4 or 1/8 directly
            im.draft("RGB", (math.ceil(w / min(scale, 8)), math.ceil(h / min(scale, 8))))
        im = im.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise PageImageError(f"页面图像无法解码：{exc}") from exc
    target = (max(1, math.ceil(w / scale)), max(1, math.ceil(h / scale)))
    if im.size != target:
        factor = max(1, round(im.width / target[0]))
        im = im.reduce(factor) if factor > 1 else im
        if im.size != target:
            im = im.resize(target, Image.Resampling.BILINEAR)
    return im


class Renderer:
    """Decoded-page cache, watermark-mask cache and the compositing; one per process."""

    def __init__(self, settings, cache_bytes: int, workers: int = 2) -> None:
        self.s = settings
        self.slots = threading.BoundedSemaphore(max(1, workers))
        self.font = find_font(settings.font_path)
        self.bases = _LRU(max(cache_bytes, 0))
        self.sizes = _LRU(100_000)  # blob -> native (w, h), so hits never touch the store
        self.masks = _LRU(256)
        self._fonts: dict[int, ImageFont.FreeTypeFont] = {}
        self._font_lock = threading.Lock()

    # -- the page ------------------------------------------------------------------------

    def base(self, sha: str, width: int | None, load: Callable[[], bytes]) -> Image.Image:
        """The page decoded at the level for ``width`` (cached; do not modify)."""
        native = self.sizes.get(sha)
        data = None
        if native is None:
            data = load()
            try:
                native = Image.open(io.BytesIO(data)).size
            except (OSError, SyntaxError, ValueError) as exc:
                raise PageImageError(f"页面图像无法解码：{exc}") from exc
            self.sizes.put(sha, native)
        k = pick_level(native[0], width, self.s.max_width)
        key = (sha, k)
        im = self.bases.get(key)
        if im is None:
            im = decode_level(data if data is not None else load(), k)
            if im.width > self.s.max_width:  # a very wide original: cap exactly
                h = round(im.height * self.s.max_width / im.width)
                im = im.resize((self.s.max_width, h), Image.Resampling.BILINEAR)
            self.bases.put(key, im, im.width * im.height * 3)
        return im

    # -- the watermark -------------------------------------------------------------------

    def _font(self, size: int):
        with self._font_lock:
            f = self._fonts.get(size)
            if f is None:
                if self.font.path:
                    f = ImageFont.truetype(self.font.path, size, index=self.font.index)
                else:
                    f = ImageFont.load_default(size)
                self._fonts[size] = f
            return f

    def font_size(self, width: int) -> int:
        return max(7, round(width * self.s.font_scale))

    def tile(self, text: str, width: int) -> np.ndarray:
        """One rotated copy of the text with its spacing, as 0..255 ink coverage; two rows,
        the second shifted by half a tile (a brick pattern)."""
        size = self.font_size(width)
        font = self._font(size)
        left, top, right, bottom = font.getbbox(text)
        tw, th = right - left, bottom - top
        pad_x, pad_y = size * 3, size * 4
        canvas = Image.new("L", (tw + pad_x, th + pad_y), 0)
        ImageDraw.Draw(canvas).text((pad_x // 2 - left, pad_y // 2 - top), text, fill=255,
                                    font=font)
        rot = np.asarray(canvas.rotate(self.s.angle, expand=True,
                                       resample=Image.Resampling.BILINEAR))
        shifted = np.roll(rot, rot.shape[1] // 2, axis=1)
        return np.vstack([rot, shifted])

    def mask_blocks(self, text: str,
                    size: tuple[int, int]) -> list[tuple[tuple[int, int], Image.Image]]:
        """The watermark over an image of ``size``, as (position, alpha mask) blocks with ink."""
        key = (text, size)
        hit = self.masks.get(key)
        if hit is not None:
            return hit
        w, h = size
        tile = self.tile(text, w)
        reps = (math.ceil(h / tile.shape[0]) + 1, math.ceil(w / tile.shape[1]) + 1)
        # start the pattern off the corner so the first stamp is not cut at the same place
        full = np.tile(tile, reps)[tile.shape[0] // 3: tile.shape[0] // 3 + h, :w]
        alpha = (full.astype(np.uint16) * int(round(self.s.opacity * 255)) // 255).astype(np.uint8)
        hb, wb = math.ceil(h / BLOCK), math.ceil(w / BLOCK)
        padded = np.zeros((hb * BLOCK, wb * BLOCK), np.uint8)
        padded[:h, :w] = alpha
        ink = padded.reshape(hb, BLOCK, wb, BLOCK).max(axis=(1, 3)) > 0
        blocks = []
        for by, bx in zip(*np.nonzero(ink)):
            y, x = int(by) * BLOCK, int(bx) * BLOCK
            blk = np.ascontiguousarray(alpha[y:y + BLOCK, x:x + BLOCK])
            blocks.append(((x, y), Image.fromarray(blk, "L")))
        self.masks.put(key, blocks)
        return blocks

    def render(self, base: Image.Image, text: str) -> bytes:
        """``base`` with the watermark burned in, as a new JPEG."""
        out = base.copy()
        color = tuple(self.s.color)
        for xy, mask in self.mask_blocks(text, out.size):
            out.paste(color, xy, mask)
        buf = io.BytesIO()
        out.save(buf, "JPEG", quality=self.s.jpeg_quality)
        return buf.getvalue()


_renderer: Renderer | None = None
_renderer_settings = None
_renderer_lock = threading.Lock()


def renderer(settings) -> Renderer:
    """The process's renderer for these settings (rebuilt when another settings object, i.e.
    another runtime, asks)."""
    global _renderer, _renderer_settings
    with _renderer_lock:
        if _renderer is None or _renderer_settings is not settings:
            _renderer = Renderer(settings.watermark, settings.cache_mb * 1024 * 1024,
                                 settings.page_workers)
            _renderer_settings = settings
        return _renderer

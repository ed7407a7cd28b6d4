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
  minute reuse theirs;
- encoding the whole watermarked JPEG was most of what remained (bench/serving.py). So each
  cached level is also kept encoded once, with a restart marker after every MCU (16 x 16
  pixels, 4:2:0): then every MCU's bytes depend on its own pixels only. A request encodes only
  the MCUs the watermark touches (composited, laid out in a strip image, encoded with the same
  quality, sampling and standard tables), and splices their bytes into the cached stream in
  place of the plain ones (``render``). The result is the JPEG a full encode with those
  markers would give (the tests compare them), for an eighth of the encoding; the markers cost
  about 5 % in size.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import math
import re
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
MCU = 16  # 4:2:0 JPEG: a minimum coded unit is 16 x 16 pixels
RST = [bytes((0xFF, 0xD0 + i)) for i in range(8)]
_RST_SPLIT = re.compile(rb"\xff[\xd0-\xd7]")
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


def _scan(data: bytes) -> tuple[bytes, list[bytes]]:
    """A baseline JPEG with a restart marker after every MCU: (everything up to the scan
    data, the entropy-coded bytes of each MCU)."""
    i = 2
    while True:  # walk the marker segments to SOS
        if data[i] != 0xFF:
            raise PageImageError("JPEG 结构异常")
        marker = data[i + 1]
        length = int.from_bytes(data[i + 2:i + 4], "big")
        i += 2 + length
        if marker == 0xDA:
            break
    end = data.rindex(b"\xff\xd9")
    return data[:i], _RST_SPLIT.split(data[i:end])


def encode_mcus(pixels: np.ndarray | Image.Image, quality: int) -> tuple[bytes, list[bytes]]:
    """Encode an RGB image (height and width multiples of 16) as a 4:2:0 baseline JPEG with
    standard tables and a restart marker after every MCU; returns ``_scan`` of it."""
    buf = io.BytesIO()
    im = pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels, "RGB")
    im.save(buf, "JPEG", quality=quality, subsampling=2, restart_marker_blocks=1,
            optimize=False)
    return _scan(buf.getvalue())


class Level:
    """One cached level of a page: the image, its pixels MCU by MCU (edges replicated to
    whole MCUs, as the JPEG encoder does), and its encoding split per MCU (made on first
    use)."""

    def __init__(self, image: Image.Image) -> None:
        self.image = image
        self.size = image.size
        w, h = image.size
        self.cols, self.rows = math.ceil(w / MCU), math.ceil(h / MCU)
        arr = np.asarray(image)
        padded = np.pad(arr, ((0, self.rows * MCU - h), (0, self.cols * MCU - w), (0, 0)),
                        mode="edge")
        self.mcus = np.ascontiguousarray(
            padded.reshape(self.rows, MCU, self.cols, MCU, 3).transpose(0, 2, 1, 3, 4)
            .reshape(self.rows * self.cols, MCU, MCU, 3))
        n = len(self.mcus)  # the restart marker after each MCU but the last
        self.markers = [RST[i % 8] for i in range(n - 1)] + [b""]
        self._encoded: dict[int, tuple[bytes, list[bytes]]] = {}
        self._tailed: dict[int, list[bytes]] = {}
        self._lock = threading.Lock()

    @property
    def cost(self) -> int:
        return self.mcus.nbytes + self.image.width * self.image.height * 3

    def encoded(self, quality: int) -> tuple[bytes, list[bytes]]:
        """(header, the bytes of every MCU) of this level as a JPEG, made once."""
        with self._lock:
            hit = self._encoded.get(quality)
            if hit is None:
                # the header carries the real size; the MCUs are those of the padded image
                buf = io.BytesIO()
                self.image.save(buf, "JPEG", quality=quality, subsampling=2,
                                restart_marker_blocks=1, optimize=False)
                hit = _scan(buf.getvalue())
                if len(hit[1]) != len(self.mcus):
                    raise PageImageError("JPEG 分块数与图像不符")
                self._encoded[quality] = hit
                # each MCU's bytes with the marker after it: a request copies this list,
                # replaces the inked ones and joins it (one C-level join)
                self._tailed[quality] = list(map(bytes.__add__, hit[1], self.markers))
            return hit

    def tailed(self, quality: int) -> tuple[bytes, list[bytes]]:
        """(header, every MCU's bytes followed by its restart marker), made once."""
        head, _ = self.encoded(quality)
        return head, self._tailed[quality]


STRIP = 256  # MCUs per row of the strip image the inked MCUs are encoded in


def to_strip(tiles: np.ndarray) -> np.ndarray:
    """(n, 16, 16[, 3]) MCUs laid out in raster order in rows of ``STRIP`` (the last row
    filled with zeros): the image whose JPEG holds them as its first n MCUs."""
    n = len(tiles)
    per_row = min(n, STRIP)
    rows = math.ceil(n / per_row)
    full = np.zeros((rows * per_row, *tiles.shape[1:]), tiles.dtype)
    full[:n] = tiles
    full = full.reshape(rows, per_row, *tiles.shape[1:])
    full = full.swapaxes(1, 2)  # (rows, 16, per_row, 16[, 3])
    return np.ascontiguousarray(full.reshape(rows * MCU, per_row * MCU, *tiles.shape[3:]))


@dataclass(frozen=True)
class Mark:
    """The watermark over one image size: the MCUs it touches (ascending flat numbers), their
    alpha laid out as a strip (``to_strip``) to paste the text colour through, and the same
    as 32 x 32 paste masks for a whole image."""

    index: np.ndarray
    strip_mask: Image.Image | None
    blocks: list[tuple[tuple[int, int], Image.Image]]
    positions: list[int]  # ``index`` as a list
    markers: list[bytes]  # the restart marker after each MCU of ``index`` (none after the last)


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
        return self.level(sha, width, load).image

    def level(self, sha: str, width: int | None, load: Callable[[], bytes]) -> Level:
        """The cached level of the page for ``width`` (see ``Level``)."""
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
        lv = self.bases.get(key)
        if lv is None:
            im = decode_level(data if data is not None else load(), k)
            if im.width > self.s.max_width:  # a very wide original: cap exactly
                h = round(im.height * self.s.max_width / im.width)
                im = im.resize((self.s.max_width, h), Image.Resampling.BILINEAR)
            lv = Level(im)
            self.bases.put(key, lv, lv.cost)
        return lv

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
        return self.mark(text, size).blocks

    def mark(self, text: str, size: tuple[int, int]) -> Mark:
        """The watermark over an image of ``size`` (cached per text and size)."""
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
        rows, cols = math.ceil(h / MCU), math.ceil(w / MCU)
        # edges replicated like the page's (the encoder fills partial MCUs so)
        pm = np.pad(alpha, ((0, rows * MCU - h), (0, cols * MCU - w)), mode="edge")
        tiles = pm.reshape(rows, MCU, cols, MCU).transpose(0, 2, 1, 3).reshape(-1, MCU, MCU)
        index = np.flatnonzero(tiles.reshape(len(tiles), -1).max(axis=1) > 0)
        mask = Image.fromarray(to_strip(tiles[index]), "L") if len(index) else None
        positions = index.tolist()
        last = rows * cols - 1
        mark = Mark(index, mask, blocks, positions,
                    [b"" if i == last else RST[i % 8] for i in positions])
        self.masks.put(key, mark)
        return mark

    def render(self, base: Image.Image | Level, text: str) -> bytes:
        """``base`` with the watermark burned in, as a new JPEG. A ``Level`` is spliced (only
        the MCUs with ink are encoded, see the module docstring); a plain image is encoded
        whole."""
        if isinstance(base, Level):
            return self._splice(base, text)
        out = base.copy()
        color = tuple(self.s.color)
        for xy, mask in self.mask_blocks(text, out.size):
            out.paste(color, xy, mask)
        buf = io.BytesIO()
        out.save(buf, "JPEG", quality=self.s.jpeg_quality)
        return buf.getvalue()

    def _splice(self, lv: Level, text: str) -> bytes:
        q = self.s.jpeg_quality
        head, plain = lv.tailed(q)
        mark = self.mark(text, lv.size)
        if not mark.positions or mark.strip_mask is None:
            return b"".join((head, *plain, b"\xff\xd9"))
        # the page's MCUs under the mark, the colour pasted through the mark's alpha (the
        # same blend as the whole-image path), encoded as one small image
        strip = Image.fromarray(to_strip(lv.mcus[mark.index]), "RGB")
        strip.paste(tuple(self.s.color), (0, 0), mark.strip_mask)
        _, new = encode_mcus(strip, q)
        segs = plain.copy()
        for i, seg in zip(mark.positions, map(bytes.__add__, new, mark.markers)):
            segs[i] = seg
        return b"".join((head, *segs, b"\xff\xd9"))


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

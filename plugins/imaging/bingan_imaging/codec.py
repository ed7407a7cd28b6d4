"""Decoding captured files safely and encoding the processed JPEG.

JPEG goes through OpenCV (libjpeg-turbo, the fastest decoder at hand) after a structural check,
because libjpeg only *warns* about a truncated file and hands back a half-grey picture. PNG and
TIFF (first frame) go through Pillow, which raises on truncated data. The pixel count is read
from the header and checked before anything is decoded (decompression bombs).
"""

from __future__ import annotations

import io
import struct
import warnings

import cv2
import numpy as np
from PIL import Image


class ImageError(ValueError):
    """A captured file that cannot be processed; the message says why (shown to the clerk)."""


class UnreadableImage(ImageError):
    """Not an image we can read, or a damaged / truncated one."""


class ImageTooLarge(ImageError):
    """More pixels than ``max_pixels`` (a decompression bomb or a wrong scanner setting)."""


def sniff(data: bytes) -> str | None:
    """The format from the magic bytes: jpeg, png, tiff or None."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    return None


def _jpeg_complete(data: bytes) -> bool:
    """True when the JPEG's segments are intact up to the scan and an EOI marker follows it.

    Walks the marker segments from SOI to the first SOS (so an EXIF thumbnail's own EOI inside
    APP1 does not count), then requires an EOI after that point.
    """
    pos, n = 2, len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return False
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01,) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        if length < 2 or pos + 2 + length > n:
            return False
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            return data.rfind(b"\xff\xd9") > pos + 2 + length
        pos += 2 + length
    return False


def _declared_dpi(im: Image.Image) -> float | None:
    dpi = im.info.get("dpi")
    if not dpi:
        return None
    try:
        x = float(dpi[0])
    except (TypeError, ValueError, IndexError):
        return None
    # JFIF "aspect ratio only" files say 1 (or 72 from many tools that never knew the truth)
    return x if x > 72.5 else None


def decode(data: bytes, max_pixels: int) -> tuple[np.ndarray, dict]:
    """Decode one captured file to a BGR uint8 array.

    Returns ``(image, info)`` with info ``{"format", "width", "height", "dpi"}`` (dpi as the
    file declares it, or None). Raises UnreadableImage or ImageTooLarge (both ValueError).
    """
    if not data:
        raise UnreadableImage("文件为空（0 字节）")
    fmt = sniff(data)
    if fmt is None:
        raise UnreadableImage("不是可识别的图像文件（仅支持 JPEG、PNG、TIFF）")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
        width, height = im.size
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"图像像素过多（{exc}），超过上限 {max_pixels}") from exc
    except Exception as exc:  # PIL raises many types for garbage headers
        raise UnreadableImage(f"无法读取 {fmt.upper()} 文件头：{exc}") from exc
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"图像为 {width}×{height}={width * height} 像素，超过上限 {max_pixels}")
    if width < 16 or height < 16:
        raise UnreadableImage(f"图像太小（{width}×{height}）")
    info = {"format": fmt, "width": width, "height": height, "dpi": _declared_dpi(im)}
    if fmt == "jpeg":
        if not _jpeg_complete(data):
            raise UnreadableImage("JPEG 文件不完整（被截断或已损坏）")
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise UnreadableImage("JPEG 数据无法解码")
        return img, info
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im.seek(0)
            im.load()
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                rgba = im.convert("RGBA")
                bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                rgb = Image.alpha_composite(bg, rgba).convert("RGB")
            elif im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr16 = np.asarray(im, np.float32)
                top = float(arr16.max()) or 1.0
                g = np.clip(arr16 * (255.0 / (65535.0 if top > 255 else 255.0)), 0, 255)
                g8 = g.astype(np.uint8)
                return cv2.cvtColor(g8, cv2.COLOR_GRAY2BGR), info
            else:
                rgb = im.convert("RGB")
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"图像像素过多：{exc}") from exc
    except Exception as exc:
        raise UnreadableImage(f"{fmt.upper()} 文件不完整或已损坏：{exc}") from exc
    arr = np.asarray(rgb)
    return cv2.cvtColor(arr, cv2.COLOR_RGB2BGR), info


def encode_jpeg(image: np.ndarray, quality: int, dpi: float | None) -> bytes:
    """Baseline JPEG of a BGR (or grey) array with the DPI written into the JFIF header."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ImageError("JPEG 编码失败")
    out = buf.tobytes()
    if dpi:
        out = set_jfif_dpi(out, dpi)
    return out


def set_jfif_dpi(jpeg: bytes, dpi: float) -> bytes:
    """Write ``dpi`` (dots per inch, both axes) into the JFIF APP0 segment (inserted if
    missing)."""
    d = max(1, min(65535, int(round(dpi))))
    if jpeg[2:4] == b"\xff\xe0" and jpeg[6:11] == b"JFIF\x00":
        return jpeg[:13] + struct.pack(">BHH", 1, d, d) + jpeg[18:]
    app0 = (b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01"
            + struct.pack(">BHH", 1, d, d) + b"\x00\x00")
    return jpeg[:2] + app0 + jpeg[2:]

"""Reading captured files safely, writing the processed JPEG."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from bingan_imaging import codec


def _png_bomb(width: int, height: int) -> bytes:
    """A real 1-bit PNG of width x height white pixels: a few hundred kilobytes that decode
    to width*height pixels."""
    row = b"\x00" + b"\xff" * ((width + 7) // 8)
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(
        b"IEND", b"")


@pytest.fixture(scope="module")
def jpeg(make_page):
    return make_page(91, "scanner", "sparse", angle=1.0).jpeg(90)


def test_jpeg_decodes_with_its_dpi(jpeg):
    img, info = codec.decode(jpeg, 10**8)
    assert img.ndim == 3 and img.shape[2] == 3
    assert info["format"] == "jpeg" and info["dpi"] == 150


def test_truncated_jpeg_is_refused(jpeg):
    for cut in (len(jpeg) // 2, len(jpeg) - 10, 400):
        with pytest.raises(codec.UnreadableImage, match="JPEG"):
            codec.decode(jpeg[:cut], 10**8)


def test_text_file_and_empty_file_are_refused():
    with pytest.raises(codec.UnreadableImage, match="不是可识别的图像"):
        codec.decode("病案首页\n姓名：张某某\n".encode(), 10**8)
    with pytest.raises(codec.UnreadableImage, match="为空"):
        codec.decode(b"", 10**8)
    assert issubclass(codec.UnreadableImage, ValueError)


def test_png_bomb_over_the_limit_is_refused_before_decoding():
    bomb = _png_bomb(12000, 12000)  # 144 million pixels
    assert len(bomb) < 2_000_000
    with pytest.raises(codec.ImageTooLarge, match="超过上限"):
        codec.decode(bomb, 100_000_000)
    huge = _png_bomb(20000, 20000)  # beyond Pillow's own bomb guard as well
    with pytest.raises(codec.ImageTooLarge):
        codec.decode(huge, 100_000_000)


def test_truncated_png_is_refused():
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 200, 3), np.uint8)).save(
        buf, "PNG")
    data = buf.getvalue()
    with pytest.raises(codec.UnreadableImage):
        codec.decode(data[: len(data) // 2], 10**8)


def test_tiff_first_frame_and_png_alpha():
    frames = [Image.new("RGB", (64, 80), c) for c in ((200, 10, 10), (10, 200, 10))]
    buf = io.BytesIO()
    frames[0].save(buf, "TIFF", save_all=True, append_images=frames[1:], dpi=(400, 400))
    img, info = codec.decode(buf.getvalue(), 10**8)
    assert info["format"] == "tiff" and info["dpi"] == 400
    assert tuple(int(v) for v in img[5, 5]) == (10, 10, 200)  # BGR of the first frame's red
    rgba = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    buf = io.BytesIO()
    rgba.save(buf, "PNG")
    img, _ = codec.decode(buf.getvalue(), 10**8)
    assert img.min() == 255  # transparent -> white paper


def test_encoded_jpeg_carries_the_dpi():
    img = np.full((120, 90, 3), 255, np.uint8)
    img[40:60, 20:70] = (30, 30, 200)
    data = codec.encode_jpeg(img, 85, 301.6)
    with Image.open(io.BytesIO(data)) as im:
        assert im.info["dpi"] == (302, 302)
        assert im.mode == "RGB"
        r, g, b = im.getpixel((45, 50))
        assert r > 150 and g < 80  # colour kept

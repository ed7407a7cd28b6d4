"""core.web.images: the reduced page-image previews shared by the capture, qc and pageindex
routes (sizes, EXIF orientation, PNG/grey/16-bit/CMYK input, undecodable data, responses)."""

from __future__ import annotations

import io

import pytest
from litestar.exceptions import HTTPException
from PIL import Image

from bingan.core.web.images import (
    PREVIEW_SIDES, jpeg_response, preview_response, reduced_jpeg,
)


def _encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _open(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def _halves(size=(1600, 800)) -> Image.Image:
    """Left half red, right half blue."""
    im = Image.new("RGB", size, (0, 0, 255))
    im.paste((255, 0, 0), (0, 0, size[0] // 2, size[1]))
    return im


def _near(px, want, tol=40) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(px, want))


def test_jpeg_shrinks_to_each_named_size_keeping_aspect():
    data = _encode(_halves((3000, 2000)), "JPEG", quality=90)
    for name in ("thumb", "medium"):
        out = _open(reduced_jpeg(data, PREVIEW_SIDES[name]))
        assert out.format == "JPEG" and out.mode == "RGB"
        assert out.size == (PREVIEW_SIDES[name], round(2000 * PREVIEW_SIDES[name] / 3000))


def test_small_image_is_not_enlarged():
    out = _open(reduced_jpeg(_encode(_halves((200, 100)), "JPEG"), 360))
    assert out.size == (200, 100)


def test_box_bounds_width_and_height_separately():
    # pageindex asks for "at most w wide, at most 4w high"
    tall = _encode(Image.new("RGB", (1000, 8000), "white"), "JPEG")
    assert _open(reduced_jpeg(tall, (200, 800))).size == (100, 800)
    wide = _encode(Image.new("RGB", (1000, 1400), "white"), "JPEG")
    assert _open(reduced_jpeg(wide, (200, 800))).size == (200, 280)


def test_exif_orientation_is_applied_and_box_is_in_display_orientation():
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown rotated 90 degrees clockwise
    data = _encode(_halves((1600, 800)), "JPEG", quality=95, exif=exif.tobytes())
    out = _open(reduced_jpeg(data, (400, 10_000)))
    # shown portrait 800x1600 fitted to 400 wide; a box not turned with the image would let
    # the reduced-scale decode stop at 400x200 and give 200x400
    assert out.size == (400, 800)
    assert _near(out.getpixel((200, 100)), (255, 0, 0))  # the stored left half is now on top
    assert _near(out.getpixel((200, 700)), (0, 0, 255))
    assert 0x0112 not in out.getexif()


def test_png_with_transparency_is_flattened_on_white():
    im = Image.new("RGBA", (500, 300), (0, 0, 0, 0))
    im.paste((0, 128, 0, 255), (0, 0, 250, 300))
    out = _open(reduced_jpeg(_encode(im, "PNG"), 100))
    assert out.format == "JPEG" and out.mode == "RGB" and out.size == (100, 60)
    assert _near(out.getpixel((10, 30)), (0, 128, 0))
    assert _near(out.getpixel((90, 30)), (255, 255, 255))


def test_grey_stays_grey():
    data = _encode(Image.new("L", (800, 600), 90), "JPEG")
    out = _open(reduced_jpeg(data, 360))
    assert out.mode == "L" and out.size == (360, 270)
    assert abs(out.getpixel((100, 100)) - 90) <= 3
    bilevel = _open(reduced_jpeg(_encode(Image.new("1", (400, 400), 1), "PNG"), 100))
    assert bilevel.mode == "L" and bilevel.getpixel((50, 50)) >= 250


def test_sixteen_bit_grey_is_scaled_not_clipped():
    im = Image.new("I;16", (300, 300), 32768)  # mid grey in 16 bits
    out = _open(reduced_jpeg(_encode(im, "PNG"), 100))
    assert out.mode == "L" and abs(out.getpixel((50, 50)) - 128) <= 3


def test_cmyk_jpeg_becomes_rgb():
    data = _encode(Image.new("CMYK", (400, 400), (0, 255, 255, 0)), "JPEG")  # red ink
    out = _open(reduced_jpeg(data, 100))
    assert out.mode == "RGB" and _near(out.getpixel((50, 50)), (255, 0, 0), tol=60)


@pytest.mark.parametrize("data", [
    b"",
    b"not an image at all",
    _encode(_halves((600, 400)), "JPEG")[:300],  # truncated inside the scan data
    b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
])
def test_undecodable_data_is_a_clear_value_error(data):
    with pytest.raises(ValueError, match="cannot be decoded"):
        reduced_jpeg(data, 360)
    with pytest.raises(HTTPException) as exc:
        jpeg_response(data, 360)
    assert exc.value.status_code == 422 and "无法解码" in exc.value.detail


def test_bad_box_is_refused():
    data = _encode(_halves((60, 40)), "JPEG")
    for box in (0, (100, 0), (-1, 5)):
        with pytest.raises(ValueError, match="box"):
            reduced_jpeg(data, box)


def test_preview_response_reduced_sizes_and_headers():
    data = _encode(_halves((2400, 3200)), "JPEG")
    thumb = preview_response(data, "thumb")
    assert thumb.media_type == "image/jpeg"
    assert thumb.headers["Cache-Control"] == "private, max-age=300"
    assert _open(thumb.content).size == (270, 360)
    assert _open(preview_response(data, "medium").content).size == (1200, 1600)
    with pytest.raises(ValueError, match="size"):
        preview_response(data, "huge")


def test_preview_response_full_sends_jpeg_and_png_as_stored():
    jpeg = _encode(_halves((700, 500)), "JPEG")
    png = _encode(_halves((700, 500)), "PNG")
    for data, media in ((jpeg, "image/jpeg"), (png, "image/png")):
        full = preview_response(data, "full")
        assert full.content == data and full.media_type == media
        assert full.headers["Cache-Control"] == "private"


def test_preview_response_full_converts_other_formats_to_jpeg():
    tiff = _encode(_halves((700, 500)), "TIFF")
    full = preview_response(tiff, "full")
    assert full.media_type == "image/jpeg" and full.content[:2] == b"\xff\xd8"
    assert _open(full.content).size == (700, 500)
    assert full.headers["Cache-Control"] == "private, max-age=300"

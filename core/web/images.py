"""Reduced previews of stored page images, for every web page that shows a page to staff.

`reduced_jpeg` turns stored image bytes (JPEG, PNG, TIFF, ... as kept in the blob store) into a
JPEG that fits a box: a JPEG is decoded at a reduced scale (libjpeg DCT scaling, "draft") so a
thumbnail of a 600 DPI scan does not decode every pixel; the EXIF orientation is applied; alpha
is flattened onto white; grey stays grey (smaller files), 16-bit grey is scaled, not clipped.

`preview_response` serves the thumb / medium / full convention of the page-image routes, and
`jpeg_response` a reduced JPEG with any box, quality and cache policy. Both answer 422 with a
Chinese message when the stored bytes cannot be decoded. Reading the blob, checking permission
and writing the audit event stay with the route.
"""

from __future__ import annotations

import io

from litestar import Response
from litestar.exceptions import HTTPException
from PIL import Image, ImageOps

#: longest side, in pixels, of each named preview size
PREVIEW_SIDES: dict[str, int] = {"thumb": 360, "medium": 1600, "full": 6000}
PREVIEW_SIZES = tuple(PREVIEW_SIDES)
#: Cache-Control of a reduced preview (staff-only, short-lived in the browser)
REDUCED_CACHE = "private, max-age=300"
#: Cache-Control of the stored bytes served as they are
ORIGINAL_CACHE = "private"
UNDECODABLE = "页面图像无法解码，请重新采集该页"

_ORIENTATION = 0x0112
_QUARTER_TURNS = {5, 6, 7, 8}  # EXIF orientations that swap width and height


def _box(max_side: int | tuple[int, int]) -> tuple[int, int]:
    box = (max_side, max_side) if isinstance(max_side, int) else tuple(max_side)
    if len(box) != 2 or min(box) < 1:
        raise ValueError(f"invalid preview box: {max_side!r}")
    return int(box[0]), int(box[1])


def _fit(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """The size `size` has once shrunk (never enlarged) to fit `box`, aspect kept."""
    scale = min(1.0, box[0] / size[0], box[1] / size[1])
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _displayable(im: Image.Image) -> Image.Image:
    """`im` as "L" or "RGB", the two modes a baseline JPEG holds."""
    if im.mode in ("L", "RGB"):
        return im
    if im.mode.startswith("I"):  # 16-bit (or 32-bit integer) grey: scale into 8 bits
        return im.point(lambda v: v / 256).convert("L")
    if im.mode == "1":
        return im.convert("L")
    if im.mode in ("LA", "La", "RGBA", "RGBa", "PA") or (
            im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat.convert("L") if im.mode in ("LA", "La") else flat
    return im.convert("RGB")  # P, CMYK, YCbCr, LAB, HSV, F ...


def reduced_jpeg(data: bytes, max_side: int | tuple[int, int], quality: int = 88) -> bytes:
    """A JPEG of the image in `data`, shrunk to fit `max_side` (a side, or a (width, height) box).

    The box is in display orientation (after the EXIF rotation). A smaller image is not
    enlarged. Raises ValueError when `data` is not a decodable image (unknown format,
    truncated, corrupt, or a decompression bomb).
    """
    box = _box(max_side)
    try:
        with Image.open(io.BytesIO(data)) as im:
            stored_box = box
            if im.getexif().get(_ORIENTATION) in _QUARTER_TURNS:
                stored_box = (box[1], box[0])
            # JPEG: decode at the smallest DCT scale still at least the target size (a no-op
            # for other formats)
            im.draft("RGB", _fit(im.size, stored_box))
            shown = ImageOps.exif_transpose(im)  # loads the pixels
            shown.thumbnail(box)
            shown = _displayable(shown)
            out = io.BytesIO()
            shown.save(out, "JPEG", quality=quality)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        # UnidentifiedImageError and truncated data are OSError; some plugins raise the others
        raise ValueError(f"page image cannot be decoded: {exc}") from exc
    return out.getvalue()


def jpeg_response(data: bytes, max_side: int | tuple[int, int], *, quality: int = 88,
                  cache_control: str = REDUCED_CACHE) -> Response:
    """`reduced_jpeg` as an image/jpeg response; 422 (`UNDECODABLE`) when it cannot decode."""
    try:
        body = reduced_jpeg(data, max_side, quality)
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=UNDECODABLE) from exc
    return Response(body, media_type="image/jpeg", headers={"Cache-Control": cache_control})


def _browser_type(data: bytes) -> str | None:
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    return None


def preview_response(data: bytes, size: str) -> Response:
    """A page image at one of `PREVIEW_SIZES`.

    "thumb" and "medium" are reduced JPEGs (`PREVIEW_SIDES`, `REDUCED_CACHE`). "full" sends a
    stored JPEG or PNG as it is (`ORIGINAL_CACHE`), so an inspector sees the stored pixels;
    another format (TIFF, ...) is converted to a JPEG of at most 6000 pixels a side.
    """
    if size not in PREVIEW_SIDES:
        raise ValueError(f"unknown preview size: {size!r}")
    if size == "full" and (media := _browser_type(data)):
        return Response(data, media_type=media, headers={"Cache-Control": ORIGINAL_CACHE})
    return jpeg_response(data, PREVIEW_SIDES[size])


def outside_work(session, rt, request, admission, page_id: int, works, *, audit_action: str,
                 size: str | int | None = None, detail: dict | None = None) -> Response | None:
    """None while ``admission`` is in one of ``works`` (a production route may then serve the
    page as stored); otherwise the refusal is audited and the answer sends the reader to the
    viewer's copy of the page (reading policy, watermark) with 303 (issue 9, M7)."""
    from litestar.response import Redirect

    from bingan.core import audit
    from bingan.core.web.security import actor
    from bingan.core.work import in_work, viewer_page_url

    if in_work(session, rt, admission, works):
        return None
    audit.record(session, rt, audit_action, actor=actor(request), outcome="denied",
                 mrn=admission.patient.mrn, admission_no=admission.admission_no,
                 detail={**(detail or {}), "page_id": page_id, "why": "not in work",
                         "sent_to": "viewer"})
    return Redirect(viewer_page_url(admission.admission_no, page_id, size), status_code=303,
                    headers={"Cache-Control": "no-store, private"})

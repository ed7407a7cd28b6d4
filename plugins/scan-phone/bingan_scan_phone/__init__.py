"""bingan scan-phone: a phone's camera as a capture source. The page opens the camera from the
phone's browser (``<input type=file accept="image/*" capture="environment">``) and uploads each
photo to capture's upload API with ``source=phone`` and the paper the photographer chose
(A4, A5, B5, 16K or the hospital's default; a photo's DPI is computed from it); see README.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Request, get
from litestar.params import FromQuery

from bingan.hooks import hookimpl
from bingan.hooks.types import PAPER_SIZES_MM, NavItem, PluginInfo, Runtime
from bingan_capture.hookspecs import CaptureSource

HERE = Path(__file__).parent
HREF = "/scan-phone"

PLUGIN = PluginInfo(name="scan-phone", version="0.1.0", hooks_api="1.1",
                    depends_on=("capture",), templates=HERE / "templates",
                    static=HERE / "static", title="手机拍摄")


@get(HREF, opt={"permission": "capture.operate"}, sync_to_thread=False)
def phone_page(request: Request, admission: FromQuery[str | None] = None) -> Any:
    from bingan.core.web.render import page
    from bingan_capture.settings import CaptureSettings

    rt = request.app.state.rt
    return page(request, "scan_phone/phone.html", admission=admission or "",
                max_mb=rt.settings(CaptureSettings).max_file_mb,
                papers=list(PAPER_SIZES_MM.items()))


@hookimpl
def capture_sources(rt: Runtime) -> list[CaptureSource]:
    return [CaptureSource("phone", "手机拍摄", "camera", HREF,
                          "手机浏览器调用摄像头逐页拍摄上传")]


@hookimpl
def register_routes() -> list[Any]:
    return [phone_page]


@hookimpl
def register_nav() -> list[NavItem]:
    return [NavItem("手机拍摄", HREF, "capture.operate", "数字化", 22)]

"""The capture sources this plugin registers itself (``capture_sources``): the upload page, the
import command and the demo. Every source ends in ``ingest.receive``; they differ only in how
bytes arrive. Scanning adapters are plugins of their own (scan-sane, scan-folder, scan-phone;
capture's README says how to write another).
"""

from __future__ import annotations

from bingan.hooks.types import Runtime
from bingan_capture.hookspecs import CaptureSource


def builtin_sources(rt: Runtime) -> list[CaptureSource]:
    return [
        CaptureSource("upload", "网页上传", "unknown", "/capture/upload",
                      "在浏览器中拖放多个文件上传"),
        CaptureSource("import", "命令行导入", "unknown", None, "由信息科在服务器上批量导入文件"),
        CaptureSource("demo", "演示数据", "scanner", None, "演示医院自带的页面"),
    ]

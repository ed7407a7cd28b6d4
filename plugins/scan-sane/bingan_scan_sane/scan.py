"""Scanning through SANE's ``scanimage``: one flatbed page, or every sheet of the feeder merged
into one multi-page TIFF (so two sheets that scan identically are still two pages)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from bingan_capture.ingest import CaptureError
from bingan_scan_sane.settings import SaneSettings


def scan(settings: SaneSettings, *, device: str | None = None, resolution: int | None = None,
         mode: str | None = None, adf: bool = False, extra=(),
         timeout: float = 600) -> list[tuple[str, bytes]]:
    """Run ``scanimage`` and return the scanned pages as TIFF files ``[(name, bytes)]``.

    Flatbed: one page on stdout. ``adf``: every sheet of the feeder (``--batch``), in order,
    merged into one multi-page TIFF.
    """
    exe = shutil.which(settings.scanimage)
    if exe is None:
        raise CaptureError(f"未找到扫描程序 {settings.scanimage}（请安装 Debian 软件包 sane-utils）")
    device = device or settings.device
    cmd = [exe]
    if device:
        cmd += ["-d", device]
    cmd += ["--format=tiff", f"--resolution={resolution or settings.resolution}",
            f"--mode={mode or settings.mode}", *extra]
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    if not adf:
        try:
            res = subprocess.run(cmd, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise CaptureError("扫描超时") from exc
        if res.returncode != 0 or not res.stdout:
            raise CaptureError("扫描失败：" + (res.stderr.decode("utf-8", "replace").strip()
                                             or f"scanimage 退出码 {res.returncode}"))
        return [(f"scan-{stamp}.tif", res.stdout)]
    with tempfile.TemporaryDirectory(prefix="bingan-scan-") as tmp:
        pattern = os.path.join(tmp, "page%04d.tif")
        try:
            res = subprocess.run(cmd + [f"--batch={pattern}"], capture_output=True,
                                 timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise CaptureError("扫描超时") from exc
        files = sorted(Path(tmp).glob("page*.tif"))
        # scanimage ends a feeder batch with "Document feeder out of documents" (status 7)
        if not files:
            raise CaptureError("扫描失败：" + (res.stderr.decode("utf-8", "replace").strip()
                                             or "进纸器中没有纸"))
        return [(f"scan-{stamp}-adf.tif", merge_tiffs([p.read_bytes() for p in files]))]


def merge_tiffs(pages: list[bytes]) -> bytes:
    """One multi-page TIFF (lossless) from single-page TIFFs: a feeder run is one file, so
    two sheets that happen to scan identically are still two pages."""
    import io

    from PIL import Image

    if len(pages) == 1:
        return pages[0]
    ims = [Image.open(io.BytesIO(b)) for b in pages]
    for im in ims:
        im.load()
    buf = io.BytesIO()
    ims[0].save(buf, "TIFF", save_all=True, append_images=ims[1:], compression="tiff_deflate")
    return buf.getvalue()

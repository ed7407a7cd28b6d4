"""bingan scan-sane: SANE scanners (``scanimage``) as a capture source.

A scanning adapter is small: it says what source it is (``capture_sources``), brings bytes in
its own way, and hands every file to capture's ``receive``; capture does the rest (identify,
process, store, batches, rework). See README.md for writing another one.
"""

from __future__ import annotations

import functools
import shutil

from bingan.hooks import hookimpl
from bingan.hooks.types import PluginInfo, Runtime
from bingan_capture.hookspecs import CaptureSource
from bingan_scan_sane.settings import SaneSettings

PLUGIN = PluginInfo(name="scan-sane", version="0.1.0", hooks_api="1.1", settings=SaneSettings,
                    depends_on=("capture",), title="SANE 扫描仪")


def available(settings: SaneSettings) -> bool:
    """Whether ``scanimage`` is installed on this machine."""
    return shutil.which(settings.scanimage) is not None


def acquire(settings: SaneSettings, options: dict | None = None) -> list[tuple[str, bytes]]:
    """Scan now (``CaptureSource.acquire``): ``options`` may name device, resolution, mode,
    adf and extra scanimage options."""
    from bingan_scan_sane.scan import scan

    o = dict(options or {})
    return scan(settings, device=o.get("device"), resolution=o.get("resolution"),
                mode=o.get("mode"), adf=bool(o.get("adf")), extra=o.get("extra") or ())


@hookimpl
def capture_sources(rt: Runtime) -> list[CaptureSource]:
    s = rt.settings(SaneSettings)
    return [CaptureSource("sane", "SANE 扫描仪", "scanner", None,
                          "直接驱动连接在采集工作站上的扫描仪",
                          functools.partial(acquire, s), functools.partial(available, s))]


@hookimpl
def register_commands(cli) -> None:
    from bingan_scan_sane.cli import sane

    cli.add_command(sane)

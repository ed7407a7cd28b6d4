"""bingan imaging: page cleanup (D2, D6) and image quality check (D7).

Hooks implemented: ``page_steps`` (orientation, perspective, deskew, illumination, denoise,
crop, blank), ``process_page`` (decode, run every plugin's steps in the configured order,
``assess_page``, encode), ``assess_page`` (readability metrics and a verdict) and
``register_commands`` (``bingan imaging process``). Logic lives in the modules; these
implementations are thin.
"""

from __future__ import annotations

from typing import Any

from bingan.hooks import hookimpl
from bingan.hooks.types import PageImage, PageQuality, PageStep, PluginInfo, ProcessedPage, Runtime

from bingan_imaging.settings import ImagingSettings
from bingan.core.config import CoreSettings

PLUGIN = PluginInfo(name="imaging", version="0.1.0", hooks_api="1.1", settings=ImagingSettings,
                    title="图像处理与质检")


@hookimpl
def page_steps(rt: Runtime) -> list[PageStep]:
    from bingan_imaging.steps import page_steps as own

    return own()


@hookimpl
def process_page(data: bytes, source: str, dpi: float | None, rt: Runtime,
                 paper: str | None) -> ProcessedPage | None:
    # no default for paper: pluggy passes only the arguments an implementation names
    # without one (every caller in the tree passes it, None when nobody said)
    from bingan_imaging.pipeline import process

    return process(data, source, dpi, rt, rt.settings(ImagingSettings),
                   rt.settings(CoreSettings).max_page_pixels, paper=paper)


@hookimpl
def assess_page(image: PageImage, dpi: float | None, notes: dict[str, Any],
                rt: Runtime) -> PageQuality | None:
    from bingan_imaging.quality import assess

    return assess(image, dpi, notes or {}, rt.settings(ImagingSettings).qc)


@hookimpl
def register_commands(cli) -> None:
    from bingan_imaging.cli import imaging

    cli.add_command(imaging)

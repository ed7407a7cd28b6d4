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
from bingan.hooks.types import PageQuality, PageStep, PluginInfo, ProcessedPage

from bingan_imaging.settings import Settings

PLUGIN = PluginInfo(name="imaging", version="0.1.0", hooks_api="1.0", settings=Settings,
                    title="图像处理与质检")


def _settings() -> Settings:
    from bingan.core.runtime import current

    s = current().settings("imaging")
    return s if isinstance(s, Settings) else Settings()


@hookimpl
def page_steps() -> list[PageStep]:
    from bingan_imaging.steps import page_steps as own

    return own()


@hookimpl
def process_page(data: bytes, source: str, dpi: float | None) -> ProcessedPage | None:
    from bingan.core.runtime import current

    from bingan_imaging.pipeline import process

    rt = current()
    return process(data, source, dpi, rt.pm, _settings(), rt.config.core.max_page_pixels)


@hookimpl
def assess_page(image: Any, dpi: float | None, notes: dict[str, Any]) -> PageQuality | None:
    from bingan_imaging.quality import assess

    return assess(image, dpi, notes or {}, _settings().qc)


@hookimpl
def register_commands(cli) -> None:
    from bingan_imaging.cli import imaging

    cli.add_command(imaging)

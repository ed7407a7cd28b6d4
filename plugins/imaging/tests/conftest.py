"""Generated pages for the imaging tests (seeded, cached for the session)."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from bingan_imaging import synth


@functools.lru_cache(maxsize=64)
def _page(seed: int, style: str, content: str, angle: float | None, orientation: int,
          dpi: float) -> synth.SynthPage:
    return synth.make_page(seed, style, content, angle=angle, orientation=orientation, dpi=dpi)


@pytest.fixture(scope="session")
def make_page():
    """make_page(seed, style="scanner", content="dense", angle=None, orientation=0, dpi=150):
    a generated capture with its truth (150 DPI keeps the tests quick; a few use 300)."""

    def make(seed: int, style: str = "scanner", content: str = "dense",
             angle: float | None = None, orientation: int = 0, dpi: float = 150):
        return _page(seed, style, content, angle, orientation, dpi)

    return make


@pytest.fixture(scope="session")
def residual():
    """residual(page, transform): the skew (degrees) the page's text lines still have after
    ``transform`` (input -> output coordinates, as steps and the pipeline record it)."""

    def angle(page: synth.SynthPage, transform) -> float:
        T = np.asarray(transform, np.float64)
        return synth.text_angle(T @ page.page_to_image, page.page_size, page.content_box)

    return angle

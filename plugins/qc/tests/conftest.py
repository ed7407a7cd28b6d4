"""The qc tests get a small deterministic page QC (``process_page``), so that which records
count as digitized does not depend on the imaging plugin's verdicts on tiny synthetic pages
(imaging measures the DPI from the sheet size and fails them all)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bingan.hooks import hookimpl


class PassQC:
    """Every page passes: a grayscale JPEG of it, with its size."""

    @hookimpl
    def process_page(self, data, source, dpi):
        from bingan.hooks.types import PageQuality, ProcessedPage

        im = Image.open(io.BytesIO(data)).convert("L")
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=90)
        return ProcessedPage(image=buf.getvalue(), width=im.width, height=im.height, dpi=dpi,
                             steps={}, quality=PageQuality("pass", {}))


@pytest.fixture(autouse=True)
def deterministic_qc(request):
    if "rt" in request.fixturenames:
        request.getfixturevalue("rt").pm.register(PassQC(), name="test-qc")
    yield

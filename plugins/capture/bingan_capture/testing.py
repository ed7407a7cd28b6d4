"""Test helpers for capture and for plugins built on it (scanning adapters, inside this
repository or not): records, small generated page images, row counts, a small real page QC,
and the fixtures ``cap``, ``two_records`` and ``deterministic_qc``.

A plugin's tests load it as a pytest plugin (``pytest_plugins = ["bingan_capture.testing"]``
in their conftest), next to core's fixtures (``bingan.core.testing``).
"""

from __future__ import annotations

import datetime as dt
import io
import random
from types import SimpleNamespace

import pytest
from PIL import Image, ImageDraw

from bingan.hooks import hookimpl

UTC = dt.timezone.utc


def make_admission(rt, mrn: str, admission_no: str, visit_no: int = 1, name: str = "张三"):
    from bingan.hooks.types import AdmissionIn, PatientIn
    from bingan.core import records

    with rt.sessions() as s, s.begin():
        adm, _ = records.upsert_admission(s, rt, AdmissionIn(
            patient=PatientIn(mrn=mrn, name=name, sex="M"), admission_no=admission_no,
            visit_no=visit_no, admitted_at=dt.datetime(2026, 4, 20, 2, 0, tzinfo=UTC),
            discharged_at=dt.datetime(2026, 5, 1, 1, 30, tzinfo=UTC),
            discharge_department="心血管内科"))
        return SimpleNamespace(id=adm.id, admission_no=adm.admission_no, barcode=adm.barcode,
                               mrn=mrn)


def page_image(text: str = "病程记录", size=(600, 800), seed: int = 1) -> Image.Image:
    """A small page with some lines of text (sharp edges, so QC sees a sharp page)."""
    rng = random.Random(seed)
    im = Image.new("RGB", size, (248, 246, 240))
    d = ImageDraw.Draw(im)
    from bingan_capture.codes import font

    d.text((size[0] // 2, 40), text, font=font(32), fill=(20, 20, 20), anchor="mm")
    y = 90
    while y < size[1] - 40:
        n = rng.randint(8, 20)
        d.text((40, y), "患者一般情况可，查体未见异常。"[:n], font=font(20), fill=(20, 20, 20))
        y += 34
    return im


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    """Encoded image; JPEG and PNG declare 300 DPI unless told otherwise (as scans do)."""
    if fmt in ("JPEG", "PNG"):
        kw.setdefault("dpi", (300, 300))
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def counts(rt) -> dict[str, int]:
    """Rows of every table a receive or processing could write."""
    from sqlalchemy import func, select

    from bingan.core.models import AuditEvent, Blob, Page, Task
    from bingan_capture.models import CaptureFile, CaptureFrame, CaptureRework

    with rt.sessions() as s:
        out = {m.__name__: s.scalar(select(func.count()).select_from(m)) or 0
               for m in (Blob, Page, CaptureFile, CaptureFrame, CaptureRework, AuditEvent)}
        out["Task"] = s.scalar(select(func.count()).select_from(Task).where(
            Task.kind == "capture.process")) or 0
        return out


class Sharpness:
    """A small, real page QC for the tests (``process_page``): grayscale JPEG out, and the
    variance of the Laplacian decides pass or fail. Registered last, it answers before the
    imaging plugin (first result), so capture's tests do not depend on imaging's verdicts on
    small synthetic pages (imaging measures the DPI from the sheet and fails them all)."""

    def __init__(self, threshold: float = 60.0) -> None:
        self.threshold = threshold
        self.calls = 0

    @hookimpl
    def process_page(self, data, source, dpi):  # the spec's rt is not needed here
        import numpy as np

        from bingan.hooks.types import PageQuality, ProcessedPage

        self.calls += 1
        im = Image.open(io.BytesIO(data)).convert("L")
        a = np.asarray(im, dtype=np.float32)
        lap = (-4 * a[1:-1, 1:-1] + a[:-2, 1:-1] + a[2:, 1:-1] + a[1:-1, :-2] + a[1:-1, 2:])
        var = float(lap.var())
        ok = var >= self.threshold
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=90)
        return ProcessedPage(image=buf.getvalue(), width=im.width, height=im.height, dpi=dpi,
                             steps={"test_sharpness": True},
                             quality=PageQuality("pass" if ok else "fail", {"sharpness": var},
                                                 () if ok else ("图像模糊",)))


@pytest.fixture(autouse=True)
def deterministic_qc(request):
    """Every test with a runtime gets the Sharpness QC (see there)."""
    if "rt" in request.fixturenames:
        request.getfixturevalue("rt").pm.register(Sharpness(), name="test-qc")
    yield


@pytest.fixture
def cap():
    """Helper namespace for the capture tests."""
    return SimpleNamespace(make_admission=make_admission, page_image=page_image, encode=encode,
                           counts=counts, Sharpness=Sharpness)


@pytest.fixture
def two_records(rt, cap):
    a = cap.make_admission(rt, "00123456", "ZY202604000001", 1, "张三")
    b = cap.make_admission(rt, "00765432", "ZY202604000002", 2, "李四")
    return a, b

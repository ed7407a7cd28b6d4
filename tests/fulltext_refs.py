"""Record refs for the full-text tests (the backends' own and the shared contract)."""

from __future__ import annotations

import datetime as dt

from bingan.hooks.types import AdmissionRef, PageRef


def admission(adm_id: int) -> AdmissionRef:
    return AdmissionRef(id=adm_id, mrn=f"{adm_id:08d}", admission_no=f"ZY{adm_id:08d}",
                        visit_no=1, patient_id=adm_id, patient_name="测试",
                        admitted_at=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
                        discharged_at=None, discharge_department=None, discharge_way=None)


def pages_of(adm_id: int, texts: list[str | None], first_page_id: int | None = None):
    """(PageRef, text) pairs in record order; page ids adm_id*100 + seq unless given."""
    base = adm_id * 100 if first_page_id is None else first_page_id - 1
    return [(PageRef(id=base + i, admission_id=adm_id, seq=i, page_type=None,
                     image_sha256=None, original_sha256=None), t)
            for i, t in enumerate(texts, start=1)]

"""Production work on a record (issue 9, M7).

Clerks, QC inspectors and page-index correctors see a record's unwatermarked pages and OCR text
only while the record is in their work: being captured, in rework, in an open QC sample, in
page-index correction (each plugin says which through the ``record_work`` hook). At any other
time they read it like everyone else: the production route refuses it and a page image is sent
to the viewer (``/records/<no>/pages/<id>.jpg``), which applies the reading policy and burns in
the reader's watermark.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from bingan.hooks.types import AdmissionRef
from bingan.core.models import Admission
from bingan.core.records import to_ref

WORK_LABELS = {"capture": "采集中", "rework": "返工中", "qc_sample": "质检抽样中",
               "pageindex": "页面索引待校正"}

#: longest side of each preview size, as the viewer's ``w`` parameter
_VIEWER_WIDTH = {"thumb": 360, "medium": 1600, "full": None}


def record_work(session: Session, rt, admission: Admission | AdmissionRef) -> set[str]:
    """The production work ``admission`` is in now, by every enabled plugin's account."""
    # the caller's admission may come from another (closed) session: read it in this one
    ref = admission if isinstance(admission, AdmissionRef) else to_ref(
        session.get(Admission, admission.id))
    out: set[str] = set()
    for group in rt.pm.hook.record_work(session=session, admission=ref, rt=rt):
        out.update(group or [])
    return out


def in_work(session: Session, rt, admission: Admission | AdmissionRef,
            works: Iterable[str]) -> bool:
    """Is ``admission`` in one of ``works`` now?"""
    return bool(record_work(session, rt, admission) & set(works))


def not_in_work_message(admission_no: str, works: Iterable[str]) -> str:
    names = "、".join(WORK_LABELS.get(w, w) for w in works)
    return (f"病案 {admission_no} 当前不在您的工作中（{names}），"
            "请通过病案查阅（按查阅权限，页面带水印）")


def viewer_page_url(admission_no: str, page_id: int, size: str | int | None = None) -> str:
    """The viewer's URL of one page (reading policy and watermark apply there)."""
    from urllib.parse import quote

    url = f"/records/{quote(admission_no, safe='')}/pages/{page_id}.jpg"
    w = _VIEWER_WIDTH.get(size) if isinstance(size, str) else size
    return url + (f"?w={w}" if w else "")

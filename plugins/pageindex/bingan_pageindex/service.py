"""The page index: queue OCR per page, store text, type pages, hand records to full text.

Flow: ``pages_captured`` (or ``bingan pageindex run``) queues one durable task
``pageindex.ocr`` per page image. The task reads the processed JPEG from the blob store, asks
``extract_text`` for the text with positions and ``classify_page`` for the type from the title
band, and stores both (once per page image: running it again finds the row and skips the OCR).
After its commit it calls ``finalize``: when every current page of the record has its text,
the record-level pass sets ``Page.page_type``/``page_type_confidence`` (pages without a title
continue the type of the page before them), marks the record ``indexed`` or
``needs_correction``, and calls ``index_record`` with the pages in record order.

A page type with confidence 1.0 was set by a person (the correction page) or by capture:
automatic passes keep it; automatic guesses are capped at 0.99.
"""

from __future__ import annotations

import contextvars
import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bingan.core import audit
from bingan.core.models import Admission, Page, Task, utcnow
from bingan.core.pages import PageError, current_pages, page_ref, reorder
from bingan.core.records import to_ref
from bingan.core.tasks import enqueue
from bingan.hooks.types import PageImage, PageRef, Runtime

from bingan_pageindex.models import PageOverride, PageText, RecordState
from bingan_pageindex.settings import PageindexSettings

log = logging.getLogger("bingan.pageindex")
KIND = "pageindex.ocr"
AUTO_MAX = 0.99
CONTINUATION = 0.85  # confidence of a page without title that continues a confident page

# (width, height) of the image being indexed, for classify_page (whose hook arguments carry
# no page size); set around the hook calls by the task and the CLI.
page_geometry: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar(
    "pageindex_page_geometry", default=None)
# which engine answered extract_text last in this context (our own implementation sets it)
last_engine: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "pageindex_last_engine", default=None)

STATUS_LABELS = {"pending": "识别中", "indexed": "已索引", "needs_correction": "待校正"}


def dedupe_key(page: Page) -> str:
    return f"{KIND}:{page.id}:{page.image_sha256}"


def _state(session: Session, admission_id: int) -> RecordState:
    st = session.get(RecordState, admission_id)
    if st is None:
        st = RecordState(admission_id=admission_id, status="pending", pages=0, low_pages=0)
        session.add(st)
        session.flush()
    return st


def enqueue_pages(session: Session, rt, pages: list[Page]) -> int:
    """Queue OCR for these pages (current ones with an image and no text yet); a failed
    earlier task for the same image is queued again. Returns how many were queued."""
    n = 0
    for p in pages:
        if p.replaced_by_id is not None or not p.image_sha256:
            continue
        has_text = session.scalar(select(PageText.id).where(
            PageText.page_id == p.id, PageText.image_sha256 == p.image_sha256))
        if has_text is not None:
            continue
        task = enqueue(session, rt, KIND, {"page_id": p.id}, dedupe_key=dedupe_key(p))
        if task.status == "failed":
            task.status, task.attempts, task.run_after = "queued", 0, utcnow()
            task.last_error = None
        st = _state(session, p.admission_id)
        st.status = "pending"
        n += 1
    session.flush()
    return n


def enqueue_admission(session: Session, rt, admission: Admission) -> int:
    return enqueue_pages(session, rt, current_pages(session, admission.id))


def ocr_task(payload: dict[str, Any], rt: Runtime) -> dict[str, Any]:
    """Handler of ``pageindex.ocr`` (idempotent)."""
    from bingan_pageindex.engine import decode_image

    pid = int(payload["page_id"])
    with rt.sessions() as s:
        page = s.get(Page, pid)
        if page is None:
            raise LookupError(f"page {pid} does not exist")
        if page.replaced_by_id is not None or not page.image_sha256:
            return {"page_id": pid, "skipped": "replaced" if page.replaced_by_id else "no image"}
        ref, adm_id, sha = page_ref(page), page.admission_id, page.image_sha256
        done = s.scalar(select(PageText.id).where(PageText.page_id == pid,
                                                  PageText.image_sha256 == sha))
    chars = None
    if done is None:
        img = decode_image(rt.store.get(sha))
        blocks, guess, ms, engine = extract_and_classify(rt, img, ref)
        text = blocks_to_text(blocks)
        chars = len(text)
        with rt.sessions() as s, s.begin():
            try:
                with s.begin_nested():
                    s.add(PageText(
                        page_id=pid, admission_id=adm_id, image_sha256=sha, text=text,
                        blocks=[[b.text, *b.box, b.confidence] for b in blocks],
                        engine=engine[:64], ms=ms, guess_type=guess.page_type if guess else None,
                        guess_confidence=guess.confidence if guess else None))
                    s.flush()
            except IntegrityError:  # another worker stored it meanwhile
                pass
            _state(s, adm_id)
    status = finalize(rt, adm_id)
    return {"page_id": pid, "chars": chars, "record": status}


def blocks_to_text(blocks) -> str:
    from bingan_pageindex.engine import blocks_text

    return blocks_text(blocks)


def extract_and_classify(rt, img: PageImage, ref: PageRef):
    """Run the ``extract_text`` and ``classify_page`` hooks on a decoded image."""
    h, w = img.shape[:2]
    token = page_geometry.set((w, h))
    eng_token = last_engine.set(None)
    try:
        t0 = time.perf_counter()
        blocks = rt.pm.hook.extract_text(rt=rt, image=img, page=ref)
        ms = round((time.perf_counter() - t0) * 1000)
        if blocks is None:
            raise RuntimeError("没有启用的文字识别（extract_text）实现")
        engine = last_engine.get() or "extract_text"
        guess = rt.pm.hook.classify_page(rt=rt, blocks=list(blocks), page=ref,
                                         page_types=rt.settings(PageindexSettings).type_names)
    finally:
        page_geometry.reset(token)
        last_engine.reset(eng_token)
    return list(blocks), guess, ms, engine


def _type_pages(pages: list[Page], texts: dict[tuple[int, str], PageText],
                overrides: dict[int, PageOverride], cfg) -> int:
    """Set page types in record order; returns how many are below the threshold."""
    low, prev = 0, None
    for p in pages:
        t = texts.get((p.id, p.image_sha256 or ""))
        if p.id in overrides:
            typ, conf = overrides[p.id].page_type, 1.0
        elif p.page_type and (p.page_type_confidence or 0) >= 1.0:
            typ, conf = p.page_type, 1.0  # set by a person or by capture
        elif t is not None and (t.guess_confidence or 0) > 0 and t.guess_type:
            typ, conf = t.guess_type, min(AUTO_MAX, float(t.guess_confidence or 0))
        elif t is not None and t.text.strip() and prev is not None:
            typ, conf = prev[0], min(prev[1], CONTINUATION)
        else:
            typ, conf = cfg.other_type, 0.0
        p.page_type, p.page_type_confidence = typ, round(conf, 3)
        if conf < cfg.threshold:
            low += 1
        prev = (typ, conf)
    return low


def standard_order(pages: list[Page], type_names: list[str]) -> list[int]:
    """Page ids sorted by the configured type order (stable: pages of one type keep theirs)."""
    rank = {n: i for i, n in enumerate(type_names)}
    return [p.id for p in sorted(pages, key=lambda p: (rank.get(p.page_type or "", len(rank)),
                                                        p.seq))]


@dataclass
class Finalized:
    status: str
    admission: Any
    pages: list[tuple[Any, str]]


def finalize(rt, admission_id: int) -> str | None:
    """Record-level pass once every page has its text; calls ``index_record``.

    Returns the record's status, or None while pages are still waiting for OCR."""
    cfg = rt.settings(PageindexSettings)
    with rt.sessions() as s, s.begin():
        adm = s.get(Admission, admission_id)
        pages = current_pages(s, admission_id)
        state = _state(s, admission_id)
        state.pages = len(pages)
        texts = {(t.page_id, t.image_sha256): t for t in s.scalars(
            select(PageText).where(PageText.admission_id == admission_id))}
        if any(p.image_sha256 and (p.id, p.image_sha256) not in texts for p in pages):
            state.status = "pending"
            return None
        overrides = {o.page_id: o for o in s.scalars(select(PageOverride).where(
            PageOverride.page_id.in_([p.id for p in pages])))} if pages else {}
        low = _type_pages(pages, texts, overrides, cfg)
        if cfg.auto_sort and low == 0 and pages:
            reorder(s, admission_id, standard_order(pages, cfg.type_names))
            pages = current_pages(s, admission_id)
        state.low_pages = low
        state.status = "needs_correction" if low else "indexed"
        state.indexed_at = utcnow()
        result = Finalized(state.status, to_ref(adm), [
            (page_ref(p), texts[(p.id, p.image_sha256)].text
             if (p.id, p.image_sha256) in texts else "") for p in pages])
    rt.pm.hook.index_record(rt=rt, admission=result.admission, pages=result.pages)
    return result.status


def resend(rt, admission_id: int) -> bool:
    """Send a record's stored text to ``index_record`` again, changing nothing here (no OCR,
    no re-typing or re-ordering): what a new or rebuilt full-text index needs. Returns False
    when the record has pages still waiting for OCR (their text is sent when it comes)."""
    with rt.sessions() as s:
        adm = s.get(Admission, admission_id)
        if adm is None:
            return False
        pages = current_pages(s, admission_id)
        texts = {(t.page_id, t.image_sha256): t.text for t in s.scalars(
            select(PageText).where(PageText.admission_id == admission_id))}
        if not pages or any(p.image_sha256 and (p.id, p.image_sha256) not in texts
                            for p in pages):
            return False
        ref = to_ref(adm)
        pairs = [(page_ref(p), texts.get((p.id, p.image_sha256), "")) for p in pages]
    rt.pm.hook.index_record(rt=rt, admission=ref, pages=pairs)
    return True


class CorrectionError(ValueError):
    """The submitted correction does not fit the record (pages, types)."""


def save_correction(rt, admission_no: str, order: list[int], types: dict[int, str], *,
                    actor: audit.Actor) -> str:
    """A clerk's page order and types: reorder, set types (confidence 1.0, kept by later
    automatic passes), mark the record indexed, audit, re-call ``index_record``."""
    cfg = rt.settings(PageindexSettings)
    names = set(cfg.type_names)
    with rt.sessions() as s, s.begin():
        adm = s.scalar(select(Admission).where(Admission.admission_no == admission_no))
        if adm is None:
            raise CorrectionError(f"住院号 {admission_no} 不存在")
        pages = {p.id: p for p in current_pages(s, adm.id)}
        if sorted(order) != sorted(pages):
            raise CorrectionError("页序必须恰好包含本病案的全部页面（页面可能已被他人修改，请刷新）")
        if set(types) != set(pages):
            raise CorrectionError("每一页都必须有页面类型")
        bad = sorted({t for t in types.values() if t not in names})
        if bad:
            raise CorrectionError(f"未知的页面类型：{'、'.join(bad)}")
        before = [pid for pid in sorted(pages, key=lambda i: (pages[i].seq, i))]
        try:
            reorder(s, adm.id, order)
        except PageError as exc:
            raise CorrectionError(str(exc)) from exc
        changed = {}
        for pid, typ in types.items():
            p = pages[pid]
            if p.page_type != typ:
                changed[str(pid)] = [p.page_type, typ]
            p.page_type, p.page_type_confidence = typ, 1.0
            ov = s.get(PageOverride, pid)
            if ov is None:
                s.add(PageOverride(page_id=pid, page_type=typ, staff_no=actor.staff_no))
            else:
                ov.page_type, ov.staff_no, ov.at = typ, actor.staff_no, utcnow()
        state = _state(s, adm.id)
        state.status, state.low_pages, state.pages = "indexed", 0, len(pages)
        state.corrected_at, state.corrected_by = utcnow(), actor.staff_no
        texts = {(t.page_id, t.image_sha256): t.text for t in s.scalars(
            select(PageText).where(PageText.admission_id == adm.id))}
        audit.record(s, rt, "pageindex.correct", actor=actor, mrn=adm.patient.mrn,
                     admission_no=adm.admission_no,
                     detail={"order_before": before, "order": order, "types_changed": changed})
        cur = current_pages(s, adm.id)
        adm_ref = to_ref(adm)
        pairs = [(page_ref(p), texts.get((p.id, p.image_sha256), "")) for p in cur]
    rt.pm.hook.index_record(rt=rt, admission=adm_ref, pages=pairs)
    return "indexed"


def queue_counts(session: Session) -> dict[str, int]:
    from sqlalchemy import func

    return dict(session.execute(select(Task.status, func.count()).where(Task.kind == KIND)
                                .group_by(Task.status)).all())

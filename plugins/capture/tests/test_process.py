"""Processing: barcode identification (cover sheets, labels), the unidentified queue, QC
failures to rework and re-capture, exactly-once storage across a crash or a dead worker, and
the hooks capture calls or answers."""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pytest
from PIL import Image, ImageFilter
from sqlalchemy import select

from bingan.hooks import hookimpl
from bingan.core import tasks
from bingan.core.models import Page, Task, utcnow
from bingan.core.pages import current_pages, page_history
from bingan_capture.codes import CoverInfo, cover_sheet_image, read_codes
from bingan_capture.demo import _label
from bingan_capture.ingest import TASK_KIND, CaptureError, receive
from bingan_capture.models import CaptureFile, CaptureFrame, CaptureRework
from bingan_capture import process as proc

HALF_A4 = (1240, 1754)  # A4 at 150 DPI keeps the tests quick; barcodes stay readable


def run(rt) -> int:
    return tasks.run_until_idle(rt, kinds=[TASK_KIND])


def _receive(rt, data, name="x.pdf", **kw):
    with rt.sessions() as s, s.begin():
        return receive(s, rt, data, name, kw.pop("source", "upload"), by="R0001", **kw)


def _cover(rec, name="张三") -> Image.Image:
    return cover_sheet_image(CoverInfo(rec.barcode, rec.mrn, rec.admission_no, 1, name),
                             HALF_A4).convert("RGB")


def _pdf(images, dpi=150.0) -> bytes:
    buf = io.BytesIO()
    images[0].save(buf, "PDF", resolution=dpi, save_all=True, append_images=images[1:])
    return buf.getvalue()


class Listener:
    def __init__(self) -> None:
        self.calls: list[tuple[str, list[int]]] = []

    @hookimpl
    def pages_captured(self, admission, page_ids):
        self.calls.append((admission.admission_no, list(page_ids)))


def test_hook_identify_admission(rt, cap, two_records):
    a, b = two_records
    cover_a = _cover(a)
    # the hook finds the record barcode on a cover sheet, and on a front-page label
    assert rt.pm.hook.identify_admission(rt=rt, image=np.asarray(cover_a)[:, :, ::-1].copy(),
                                         hint={}) == a.barcode
    labelled = cap.page_image("住院病案首页", size=HALF_A4)
    _label(labelled, b.barcode)
    assert rt.pm.hook.identify_admission(rt=rt, image=labelled, hint={"filename": "x"}) == b.barcode
    assert rt.pm.hook.identify_admission(rt=rt, image=cap.page_image(size=HALF_A4), hint={}) is None
    codes = read_codes(cover_a)
    assert codes.cover and codes.record_barcode == a.barcode
    assert not read_codes(labelled).cover

    # one scanned stack: cover A, 2 pages, B's front page with a label, 1 more page
    pages = [cover_a, cap.page_image("A1", size=HALF_A4, seed=1),
             cap.page_image("A2", size=HALF_A4, seed=2), labelled,
             cap.page_image("B2", size=HALF_A4, seed=3)]
    got = _receive(rt, _pdf(pages), "stack.pdf", source="hot_folder")
    assert got.frames == 5
    assert run(rt) == 1
    with rt.sessions() as s:
        assert len(current_pages(s, a.id)) == 2  # the cover sheet is not a page
        assert len(current_pages(s, b.id)) == 2
        frames = s.scalars(select(CaptureFrame).order_by(CaptureFrame.idx)).all()
        assert [f.status for f in frames] == ["cover", "stored", "stored", "stored", "stored"]
        assert [f.admission_id for f in frames] == [a.id, a.id, a.id, b.id, b.id]
        assert frames[3].barcode == b.barcode
        assert s.get(CaptureFile, got.capture_id).status == "done"


def test_unidentified_pages_wait_for_a_clerk(rt, cap, two_records):
    a, b = two_records
    loose = [cap.page_image("补充报告", size=HALF_A4, seed=5),
             cap.page_image("补充报告2", size=HALF_A4, seed=6)]
    got = _receive(rt, _pdf(loose), "loose.pdf")
    # a cover sheet whose barcode names no record
    from bingan.core.records import record_barcode

    ghost = CoverInfo(record_barcode("00999999", 1), "00999999", "ZY209999999999", 1, "无名")
    got2 = _receive(rt, _pdf([cover_sheet_image(ghost, HALF_A4).convert("RGB"),
                              cap.page_image("x", size=HALF_A4)]), "ghost.pdf")
    run(rt)
    with rt.sessions() as s:
        assert s.scalar(select(Page)) is None
        waiting = proc.unidentified_frames(s)
        assert len(waiting) == 4
        assert s.get(CaptureFile, got.capture_id).status == "unidentified"
        notes = {f.note for f in waiting}
        assert any("没有对应的病案" in n for n in notes) and any("未识别到病案条码" in n for n in notes)
    with rt.sessions() as s, s.begin():
        with pytest.raises(CaptureError, match="不存在"):
            proc.assign(s, rt, got.capture_id, "ZY209999999999", by="R0001")
    with rt.sessions() as s, s.begin():
        n = proc.assign(s, rt, got.capture_id, b.barcode, by="R0001")  # a scanned barcode
    assert n == 2
    with rt.sessions() as s, s.begin():
        assert proc.discard(s, rt, got2.capture_id, "误扫的分隔页", by="R0001") == 2
    run(rt)
    with rt.sessions() as s:
        assert len(current_pages(s, b.id)) == 2 and not current_pages(s, a.id)
        assert proc.unidentified_frames(s) == []
        assert s.get(CaptureFile, got.capture_id).status == "done"


def test_qc_failure_goes_to_rework_and_recapture_replaces_the_page(rt, cap, two_records):
    a, _ = two_records
    qc, listener = cap.Sharpness(), Listener()
    rt.pm.register(qc, name="test-sharpness")
    rt.pm.register(listener, name="test-listener")
    sharp = cap.page_image("医嘱单", seed=7)
    blurred = cap.page_image("检验报告", seed=8).filter(ImageFilter.GaussianBlur(4))
    got = _receive(rt, _pdf([sharp, blurred]), "two.pdf", admission_no=a.admission_no)
    run(rt)
    with rt.sessions() as s:
        p1, p2 = current_pages(s, a.id)
        assert (p1.qc_status, p2.qc_status) == ("pass", "fail")
        item = s.scalar(select(CaptureRework))
        assert (item.page_id, item.origin, item.status, item.reason) == (p2.id, "qc", "open",
                                                                          "图像模糊")
    assert listener.calls == [(a.admission_no, [p1.id, p2.id])]
    # re-capture: the new image replaces the failing page; the old one stays in the history
    redo = cap.encode(cap.page_image("检验报告", seed=8), "JPEG", quality=92)
    with rt.sessions() as s, s.begin():
        with pytest.raises(CaptureError, match="不存在或已被替换"):
            receive(s, rt, redo, "redo.jpg", "upload", replace_page_id=99999)
    got2 = _receive(rt, redo, "redo.jpg", replace_page_id=p2.id, rework_id=item.id)
    assert got2.capture_id != got.capture_id
    run(rt)
    with rt.sessions() as s:
        cur = current_pages(s, a.id)
        assert [p.seq for p in cur] == [1, 2] and cur[0].id == p1.id
        new = cur[1]
        assert new.id != p2.id and new.qc_status == "pass"
        assert [p.id for p in page_history(s, new.id)] == [p2.id, new.id]
        item = s.get(CaptureRework, item.id)
        assert (item.status, item.new_page_id, item.capture_id) == ("done", new.id, got2.capture_id)
    assert listener.calls[-1] == (a.admission_no, [new.id])


class Crash:
    """process_page that dies on its n-th call (a worker killed mid-file)."""

    def __init__(self, at: int) -> None:
        self.at, self.calls = at, 0

    @hookimpl
    def process_page(self, data, source, dpi):
        self.calls += 1
        if self.calls == self.at:
            raise RuntimeError("worker killed")
        return None


def test_restart_during_processing_loses_nothing(rt, cap, two_records):
    a, b = two_records
    # 1) a worker dies in the middle of a 3-page file: the retry stores each page once
    crash = Crash(at=2)
    rt.pm.register(crash, name="test-crash")
    three = [cap.page_image(f"第{i}页", seed=i) for i in range(3)]
    _receive(rt, _pdf(three), "three.pdf", admission_no=a.admission_no)
    assert tasks.run_one(rt) is not None
    with rt.sessions() as s:
        t = s.scalar(select(Task).where(Task.kind == TASK_KIND))
        assert t.status == "queued" and "worker killed" in t.last_error
        assert len(current_pages(s, a.id)) == 1  # page 1 committed before the crash
        t.run_after = utcnow()
        s.commit()
    assert run(rt) == 1
    with rt.sessions() as s:
        pages = current_pages(s, a.id)
        assert len(pages) == 3 and [p.seq for p in pages] == [1, 2, 3]
        assert s.scalar(select(Task).where(Task.kind == TASK_KIND)).status == "done"
    rt.pm.unregister(name="test-crash")

    # 2) a worker claims the task and vanishes; its lease runs out, another worker takes over
    _receive(rt, _pdf(three[:2]), "two.pdf", admission_no=b.admission_no)
    dead = tasks.claim(rt, "dead-worker", kinds=[TASK_KIND])
    assert dead is not None
    assert tasks.claim(rt, "w2", kinds=[TASK_KIND]) is None  # leased: nobody else takes it
    with rt.sessions() as s, s.begin():
        s.get(Task, dead.id).lease_until = utcnow() - dt.timedelta(seconds=1)
    assert run(rt) == 1
    with rt.sessions() as s:
        assert len(current_pages(s, b.id)) == 2
        t = s.get(Task, dead.id)
        assert (t.status, t.attempts) == ("done", 2)
    # the dead worker's late finish changes nothing, and running the handler again neither
    tasks._finish(rt, dead.id, "dead-worker", error="late")
    proc.process_capture(rt, dead.payload["capture_id"])
    with rt.sessions() as s:
        assert s.get(Task, dead.id).status == "done"
        assert len(current_pages(s, b.id)) == 2


def test_hook_pages_captured(rt, cap, two_records):
    a, b = two_records
    listener = Listener()
    rt.pm.register(listener, name="test-listener")
    pages = [_cover(a), cap.page_image("A1", size=HALF_A4), _cover(b),
             cap.page_image("B1", size=HALF_A4), cap.page_image("B2", size=HALF_A4, seed=4)]
    _receive(rt, _pdf(pages), "two-records.pdf")
    run(rt)
    with rt.sessions() as s:
        pa = [p.id for p in current_pages(s, a.id)]
        pb = [p.id for p in current_pages(s, b.id)]
    assert sorted(listener.calls) == sorted([(a.admission_no, pa), (b.admission_no, pb)])
    assert len(pa) == 1 and len(pb) == 2
    # announced once: running the capture again does not repeat it
    with rt.sessions() as s:
        cid = s.scalar(select(CaptureFile.id))
    proc.process_capture(rt, cid)
    assert len(listener.calls) == 2


def test_hook_capture_sources(rt):
    srcs = {s.name: s for group in rt.pm.hook.capture_sources(rt=rt) for s in group}
    assert {"upload", "import", "demo"} <= set(srcs)  # adapters add theirs (scan-* plugins)
    assert srcs["upload"].href == "/capture/upload" and srcs["import"].href is None


def test_hook_request_rework(rt, cap, two_records):
    a, b = two_records
    _receive(rt, _pdf([cap.page_image("1"), cap.page_image("2", seed=3)]), "x.pdf",
             admission_no=a.admission_no)
    run(rt)
    from bingan.core.records import to_ref
    from bingan.core.models import Admission

    with rt.sessions() as s, s.begin():
        ref = to_ref(s.get(Admission, a.id))
        pages = current_pages(s, a.id)
        ids = [x for group in rt.pm.hook.request_rework(rt=rt, 
            session=s, admission=ref, page_ids=[pages[1].id], reason="印章不清", by="Q0001")
            for x in group]
        again = [x for group in rt.pm.hook.request_rework(rt=rt, 
            session=s, admission=ref, page_ids=[pages[1].id], reason="页面倾斜", by="Q0001")
            for x in group]
        whole = [x for group in rt.pm.hook.request_rework(rt=rt, 
            session=s, admission=ref, page_ids=[], reason="缺页", by="Q0001") for x in group]
        with pytest.raises(CaptureError, match="不属于"):
            rt.pm.hook.request_rework(rt=rt, session=s, admission=to_ref(s.get(Admission, b.id)),
                                      page_ids=[pages[0].id], reason="x", by="Q0001")
    assert ids == again and len(whole) == 1 and whole != ids
    with rt.sessions() as s:
        item = s.get(CaptureRework, ids[0])
        assert (item.origin, item.reason, item.page_id) == ("inspection", "印章不清；页面倾斜",
                                                             pages[1].id)
        assert s.get(CaptureRework, whole[0]).page_id is None


class BlockersListener:
    """Records ``digitization_blockers_changed`` calls with what the hook answers then (read in
    the caller's session, so the change is visible before the commit)."""

    def __init__(self, rt) -> None:
        self.rt = rt
        self.calls: list[tuple[str, list[str]]] = []

    @hookimpl
    def digitization_blockers_changed(self, session, admission):
        seen = [r for group in self.rt.pm.hook.digitization_blockers(rt=self.rt,
            session=session, admission=admission) for r in group]
        self.calls.append((admission.admission_no, seen))


def _blockers(rt, admission_id) -> list[str]:
    from bingan.core.records import to_ref
    from bingan.core.models import Admission

    with rt.sessions() as s:
        ref = to_ref(s.get(Admission, admission_id))
        return [r for group in rt.pm.hook.digitization_blockers(rt=rt, session=s, admission=ref)
                for r in group]


def test_hook_digitization_blockers(rt, cap, two_records):
    from bingan.core.records import to_ref
    from bingan.core.models import Admission

    a, b = two_records
    listener = BlockersListener(rt)
    rt.pm.register(listener, name="test-blockers")
    blurred = cap.page_image("检验报告", seed=8).filter(ImageFilter.GaussianBlur(4))
    _receive(rt, _pdf([cap.page_image("医嘱单", seed=7), blurred]), "two.pdf",
             admission_no=a.admission_no)
    _receive(rt, _pdf([cap.page_image("医嘱单", seed=9)]), "b.pdf", admission_no=b.admission_no)
    run(rt)
    # image QC failed page 2: its rework item blocks the record; B has nothing open
    assert _blockers(rt, a.id) == ["第 2 页待返工：图像模糊"]
    assert _blockers(rt, b.id) == []
    assert listener.calls == []  # the capture itself announces through pages_captured

    # an inspector sends page 1 and the whole record back: the change is announced in the
    # inspector's transaction, and page items come in page order before the record's
    with rt.sessions() as s, s.begin():
        ref = to_ref(s.get(Admission, a.id))
        p1, p2 = current_pages(s, a.id)
        rt.pm.hook.request_rework(rt=rt, session=s, admission=ref, page_ids=[p1.id], reason="印章不清",
                                  by="Q0001")
        whole = [x for g in rt.pm.hook.request_rework(rt=rt, 
            session=s, admission=ref, page_ids=[], reason="抽检不合格：缺护理记录", by="Q0001")
            for x in g][0]
    want = ["第 1 页待返工：印章不清", "第 2 页待返工：图像模糊", "整份病案待返工：抽检不合格：缺护理记录"]
    assert listener.calls[0] == (a.admission_no, want[:2])
    assert listener.calls[1] == (a.admission_no, want)
    assert _blockers(rt, a.id) == want

    # re-captures replace pages 1 and 2 and close their items
    with rt.sessions() as s:
        items = {i.page_id: i.id for i in s.scalars(select(CaptureRework).where(
            CaptureRework.page_id.is_not(None)))}
    for pid, seed in ((p1.id, 7), (p2.id, 8)):
        _receive(rt, cap.encode(cap.page_image("重拍", seed=seed), "JPEG", quality=92),
                 f"redo{seed}.jpg", replace_page_id=pid, rework_id=items[pid])
    run(rt)
    assert _blockers(rt, a.id) == [want[2]]
    # the clerk closes the record-level item: nothing blocks any more, and that is announced
    n = len(listener.calls)
    with rt.sessions() as s, s.begin():
        proc.close_record_rework(s, rt, whole, by="R0001")
    assert listener.calls[n:] == [(a.admission_no, [])]
    assert _blockers(rt, a.id) == []

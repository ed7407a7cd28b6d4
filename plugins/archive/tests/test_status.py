"""Digitized status (D10): complete against the expected count, no failing page; the hooks."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from bingan.hooks import hookimpl
from bingan.core import pages, tasks
from bingan.core.models import Admission, Task, utcnow
from bingan.core.records import to_ref
from bingan_archive.models import ArchiveRecord


def _record(w, aid) -> ArchiveRecord:
    with w.rt.sessions() as s:
        return s.get(ArchiveRecord, aid)


def test_hook_expected_pages(world):
    aid = world.admission()
    world.expect.counts["ZY202605000001"] = 3
    world.pages(aid, [{"page_type": "病案首页"}, {"page_type": "出院记录"}])
    out = world.build(aid)
    assert world.expect.calls >= 1
    assert out.status == "incomplete" and "已有 2 页，应有 3 页" in out.reason
    rec = _record(world, aid)
    assert (rec.status, rec.page_count, rec.expected_pages, rec.digitized_at) == (
        "incomplete", 2, 3, None)
    assert out.document_version == 1  # the PDF of what is there is kept, just not digitized
    assert world.recorder.calls == []

    world.pages(aid, [{"page_type": "入院记录"}])  # the missing sheet arrives
    out = world.build(aid)
    assert out.status == "digitized" and out.document_version == 2
    rec = _record(world, aid)
    assert rec.status == "digitized" and rec.document_version == 2 and rec.digitized_at
    # no answer from any plugin: only QC is checked
    world.expect.counts.clear()
    aid2 = world.admission(mrn="00123457", admission_no="ZY202605000002")
    world.pages(aid2, [{"page_type": "病案首页"}])
    assert world.build(aid2).status == "digitized"


def test_hook_record_digitized(world):
    aid = world.admission()
    world.pages(aid, [{"page_type": "病案首页"}])
    world.build(aid)
    world.build(aid)  # unchanged: not announced twice
    assert world.recorder.calls == [("ZY202605000001", 1)]
    world.pages(aid, [{"page_type": "护理记录"}])
    world.build(aid)
    assert world.recorder.calls == [("ZY202605000001", 1), ("ZY202605000001", 2)]


def test_failing_page_blocks_until_reworked(world, jpeg):
    aid = world.admission()
    ids = world.pages(aid, [{"page_type": "病案首页"}, {"qc_status": "fail"},
                            {"qc_status": "warn"}])
    out = world.build(aid)
    assert out.status == "failing" and "第 2 页质检未通过" in out.reason
    assert world.recorder.calls == []
    with world.rt.sessions() as s, s.begin():  # rework: the page is captured again
        pages.replace_page(s, world.rt, ids[1], pages.NewPage(image=jpeg(seed=5), dpi=150,
                                                              qc_status="pass"))
    out = world.build(aid)
    assert out.status == "digitized" and out.document_version == 2
    assert world.recorder.calls == [("ZY202605000001", 2)]


def test_no_pages_and_both_problems_reported(world):
    aid = world.admission()
    out = world.build(aid)
    assert out.status == "incomplete" and out.reason == "尚无页面"
    world.expect.counts["ZY202605000001"] = 5
    world.pages(aid, [{"qc_status": "fail"}])
    out = world.build(aid)
    assert out.status == "failing"
    assert "应有 5 页" in out.reason and "第 1 页质检未通过" in out.reason


def test_hook_pages_captured(world):
    """Capture calls ``pages_captured`` after its commit: a build is queued (once per page
    set) and the task builds, evaluates and announces."""
    aid = world.admission()
    ids = world.pages(aid, [{"page_type": "病案首页"}, {"page_type": "出院记录"}])
    with world.rt.sessions() as s:
        ref = to_ref(s.get(Admission, aid))
    world.rt.pm.hook.pages_captured(rt=world.rt, admission=ref, page_ids=ids)
    world.rt.pm.hook.pages_captured(rt=world.rt, admission=ref, page_ids=list(reversed(ids)))  # same set
    with world.rt.sessions() as s:
        queued = list(s.scalars(select(Task).where(Task.kind == "archive.build")))
    assert len(queued) == 1 and queued[0].payload == {"admission_id": aid}
    assert tasks.run_until_idle(world.rt) == 1
    with world.rt.sessions() as s:
        t = s.get(Task, queued[0].id)
        assert t.status == "done" and t.result["status"] == "digitized"
        assert t.result["document_version"] == 1
    assert world.recorder.calls == [("ZY202605000001", 1)]


def test_hook_index_record(world):
    """A page-index update (types corrected) queues a rebuild whose bookmarks follow."""
    import io

    import pikepdf

    aid = world.admission()
    ids = world.pages(aid, [{}, {}])
    world.build(aid)
    from bingan.core.models import Page

    with world.rt.sessions() as s, s.begin():
        for pid, t in zip(ids, ["病案首页", "出院记录"]):
            s.get(Page, pid).page_type = t
    with world.rt.sessions() as s:
        adm = s.get(Admission, aid)
        refs = [(pages.page_ref(p), "text") for p in pages.current_pages(s, aid)]
        ref = to_ref(adm)
    world.rt.pm.hook.index_record(rt=world.rt, admission=ref, pages=refs)
    assert tasks.run_until_idle(world.rt) == 1
    with world.rt.sessions() as s:
        doc = pages.latest_document(s, aid)
    assert doc.version == 2
    pdf = pikepdf.open(io.BytesIO(world.rt.store.get(doc.blob_sha256)))
    with pdf.open_outline() as o:
        assert [x.title for x in o.root] == ["病案首页", "出院记录"]


def test_sweep_queues_forgotten_builds(world):
    from bingan_archive import jobs

    aid = world.admission()
    world.pages(aid, [{"page_type": "病案首页"}])
    assert jobs.sweep(world.rt) == 0  # pages younger than sweep_minutes: a page index may be at work
    from bingan.core.models import Page

    with world.rt.sessions() as s, s.begin():
        for p in s.scalars(select(Page)):
            p.created_at = utcnow() - dt.timedelta(hours=1)
    assert jobs.sweep(world.rt) == 1
    assert tasks.run_until_idle(world.rt) == 1
    assert _record(world, aid).status == "digitized"
    assert jobs.sweep(world.rt) == 0  # built since: nothing stale


def test_status_counts(world):
    from bingan_archive import service

    a1 = world.admission()
    a2 = world.admission(mrn="00123457", admission_no="ZY202605000002")
    world.admission(mrn="00123458", admission_no="ZY202605000003")
    world.pages(a1, [{}])
    world.pages(a2, [{"qc_status": "fail"}])
    world.build(a1)
    world.build(a2)
    with world.rt.sessions() as s:
        c = service.status_counts(s)
    assert (c["digitized"], c["incomplete"], c["failing"], c["pending"], c["total"]) == (
        1, 0, 1, 1, 3)


class Blockers:
    """A stand-in rework queue: answers ``digitization_blockers`` from a dict by admission
    no. (in the caller's session, as capture does)."""

    def __init__(self) -> None:
        self.reasons: dict[str, list[str]] = {}

    @hookimpl
    def digitization_blockers(self, session, admission):
        assert session is not None
        return list(self.reasons.get(admission.admission_no, []))


def _changed(world, aid):
    """What a rework queue does when an item opens or closes: announce it in its own
    transaction (the re-evaluation must only run after that commits)."""
    with world.rt.sessions() as s, s.begin():
        world.rt.pm.hook.digitization_blockers_changed(rt=world.rt, session=s, admission=to_ref(
            s.get(Admission, aid)))


def test_hook_digitization_blockers(world):
    """Open rework blocks the digitized status, with its reason; closing it restores it."""
    b = Blockers()
    world.rt.pm.register(b, name="test-blockers")
    aid = world.admission()
    world.pages(aid, [{"page_type": "病案首页"}, {"page_type": "出院记录"}])
    b.reasons["ZY202605000001"] = ["第 2 页待返工：抽检不合格：印章不清"]
    out = world.build(aid)
    assert out.status == "failing" and out.reason == "第 2 页待返工：抽检不合格：印章不清"
    rec = _record(world, aid)
    assert (rec.status, rec.digitized_at, rec.document_version) == ("failing", None, 1)
    assert world.recorder.calls == []
    # several plugins' reasons are all reported, after the page checks
    b2 = Blockers()
    b2.reasons["ZY202605000001"] = ["整份病案待返工：缺页"]
    world.rt.pm.register(b2, name="test-blockers-2")
    world.pages(aid, [{"qc_status": "fail"}])
    out = world.build(aid)
    assert out.reason.startswith("第 3 页质检未通过；")
    assert set(out.reason.split("；")[1:]) == {"第 2 页待返工：抽检不合格：印章不清",
                                              "整份病案待返工：缺页"}
    world.rt.pm.unregister(name="test-blockers-2")


def test_hook_digitization_blockers_changed(world):
    """A digitized record sent back to rework stops being digitized once the change is
    announced, and is digitized again (same PDF, announced once) when the rework closes."""
    b = Blockers()
    world.rt.pm.register(b, name="test-blockers")
    aid = world.admission()
    world.pages(aid, [{"page_type": "病案首页"}])
    assert world.build(aid).status == "digitized"
    assert world.recorder.calls == [("ZY202605000001", 1)]

    b.reasons["ZY202605000001"] = ["整份病案待返工：抽检不合格：缺页"]
    _changed(world, aid)
    with world.rt.sessions() as s:
        queued = list(s.scalars(select(Task).where(Task.kind == "archive.build",
                                                   Task.status == "queued")))
    assert len(queued) == 1 and queued[0].payload == {"admission_id": aid}
    assert tasks.run_until_idle(world.rt) == 1
    rec = _record(world, aid)
    assert (rec.status, rec.reason, rec.digitized_at) == (
        "failing", "整份病案待返工：抽检不合格：缺页", None)

    b.reasons.clear()  # the rework is done
    _changed(world, aid)
    assert tasks.run_until_idle(world.rt) == 1
    rec = _record(world, aid)
    assert (rec.status, rec.reason, rec.document_version) == ("digitized", "", 1)
    assert rec.digitized_at is not None
    # digitized again with the same version: announced again, since it had stopped counting
    assert world.recorder.calls == [("ZY202605000001", 1), ("ZY202605000001", 1)]

    # the same state again is evaluated again (no stale de-duplication)
    b.reasons["ZY202605000001"] = ["整份病案待返工：抽检不合格：缺页"]
    _changed(world, aid)
    assert tasks.run_until_idle(world.rt) == 1
    assert _record(world, aid).status == "failing"


def test_changed_rolled_back_queues_nothing(world):
    aid = world.admission()
    with world.rt.sessions() as s:
        s.begin()
        world.rt.pm.hook.digitization_blockers_changed(rt=world.rt, session=s, admission=to_ref(
            s.get(Admission, aid)))
        s.rollback()
    with world.rt.sessions() as s:
        assert s.scalar(select(Task).where(Task.kind == "archive.build")) is None

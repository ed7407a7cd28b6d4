"""The page index end to end: queue on capture, durable OCR tasks, record typing,
index_record, correction page, CLI. Real OCR on small generated pages, both databases."""

from __future__ import annotations

import datetime as dt
import json

from click.testing import CliRunner
from bingan.hooks import hookimpl
from sqlalchemy import func, select, update

from bingan.core.models import AuditEvent, Page, Role, Task
from bingan.core.tasks import claim, run_until_idle
from bingan.core.staff import ensure_builtin_roles

from bingan_pageindex.models import PageOverride, PageText, RecordState
from bingan_pageindex.service import KIND, finalize, ocr_task


def _pages(rt, adm_id):
    with rt.sessions() as s:
        rows = s.scalars(select(Page).where(Page.admission_id == adm_id,
                                            Page.replaced_by_id.is_(None))
                         .order_by(Page.seq)).all()
        return [(p.id, p.seq, p.page_type, p.page_type_confidence) for p in rows]


def _state(rt, adm_id):
    with rt.sessions() as s:
        st = s.get(RecordState, adm_id)
        return (st.status, st.pages, st.low_pages) if st else None


def _count(rt, model, *where):
    with rt.sessions() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where)) or 0


def test_hook_pages_captured(pirt, make_record, capture):
    rec = make_record("ZY2026060010", [(41, "病案首页"), (42, "出院记录")])
    capture(pirt, rec)
    capture(pirt, rec)  # announced twice (a retried capture): queued once
    assert _count(pirt, Task, Task.kind == KIND) == 2
    assert _state(pirt, rec.id)[0] == "pending"


def test_hook_index_record(pirt, spy, make_record, capture, ocr_all):
    """OCR of every page, types in record order, then one index_record call with the pages
    (and their text) in record order, received by a plugin registered on rt.pm."""
    rec = make_record("ZY2026060001", [(41, "病案首页"), (42, "出院记录"), (43, "入院记录")])
    capture(pirt, rec)
    assert ocr_all(pirt) == 3
    pages = _pages(pirt, rec.id)
    assert [p[2] for p in pages] == ["病案首页", "出院记录", "入院记录"]
    assert all(0.8 <= p[3] <= 0.99 for p in pages)  # automatic guesses stay below 1.0
    assert _state(pirt, rec.id) == ("indexed", 3, 0)
    assert len(spy.calls) == 1  # only once the last page had its text
    adm, got = spy.calls[0]
    assert adm.admission_no == rec.admission_no
    assert [ref.id for ref, _ in got] == rec.page_ids
    assert [ref.page_type for ref, _ in got] == ["病案首页", "出院记录", "入院记录"]
    for (ref, text), sp in zip(got, rec.synth):
        assert sp.title in text.replace(" ", "")
    with pirt.sessions() as s:
        rows = s.scalars(select(PageText).order_by(PageText.page_id)).all()
        assert [r.page_id for r in rows] == rec.page_ids
        assert rows[0].blocks and len(rows[0].blocks[0]) == 6  # text, x1, y1, x2, y2, conf
        assert rows[0].engine.startswith("rapidocr") and rows[0].ms > 0


def test_low_confidence_goes_to_correction_and_clerk_fixes_it(pirt, spy, make_record,
                                                              capture, ocr_all):
    from webutil import login, make_staff, post_form, web_client

    rec = make_record("ZY2026060002", [
        (51, "病程记录", {"title": "首次病程记录"}),
        (52, "病程记录", {"continuation": True}),     # no title: continues the note
        (53, "护理记录", {"title": "护理评估单"}),     # unknown form: a near miss
    ], mrn="00601234")
    capture(pirt, rec)
    assert ocr_all(pirt) == 3
    pages = _pages(pirt, rec.id)
    assert [p[2] for p in pages[:2]] == ["病程记录", "病程记录"]
    assert pages[1][3] == 0.85  # continuation
    assert pages[2][3] < 0.8
    assert _state(pirt, rec.id) == ("needs_correction", 3, 1)

    with pirt.sessions() as s, s.begin():
        ensure_builtin_roles(s)
        s.add(Role(name="indexer", label="索引员", permissions=["pageindex.correct"]))
    make_staff(pirt, "C001", ["indexer"])
    make_staff(pirt, "R001", ["records"])
    with web_client(pirt) as c:
        assert login(c, "R001").status_code in (302, 303)
        assert c.get("/pageindex").status_code == 403
        assert c.get(f"/pageindex/records/{rec.admission_no}").status_code == 403
        assert c.get(f"/pageindex/pages/{rec.page_ids[0]}/image").status_code == 403
        r = post_form(c, f"/pageindex/records/{rec.admission_no}",
                      {"order": ",".join(map(str, rec.page_ids[::-1]))})
        assert r.status_code == 403
    assert [p[0] for p in _pages(pirt, rec.id)] == rec.page_ids  # nothing changed

    with web_client(pirt) as c:
        assert login(c, "C001").status_code in (302, 303)
        r = c.get("/pageindex")
        assert r.status_code == 200 and rec.admission_no in r.text and "待校正" in r.text
        assert "页面索引校正" in r.text  # menu entry
        r = c.get(f"/pageindex/records/{rec.admission_no}")
        assert r.status_code == 200
        assert r.text.count('class="pi-card') == 3 and 'pi-card low' in r.text
        assert f'name="type_{rec.page_ids[2]}"' in r.text and "correct.js" in r.text
        img = c.get(f"/pageindex/pages/{rec.page_ids[0]}/image?w=200")
        assert img.status_code == 200 and img.headers["content-type"] == "image/jpeg"
        assert img.content[:2] == b"\xff\xd8" and "no-store" in img.headers["cache-control"]
        from PIL import Image
        import io

        assert Image.open(io.BytesIO(img.content)).width == 200
        assert c.get("/pageindex/pages/999999/image").status_code == 404
        assert c.get("/pageindex/records/ZY2099999999").status_code == 404
        js = c.get("/static/pageindex/correct.js")
        assert js.status_code == 200 and "altKey" in js.text

        # a wrong submission (a page missing) changes nothing
        a, b, d = rec.page_ids
        bad = post_form(c, f"/pageindex/records/{rec.admission_no}",
                        {"order": f"{d},{a}", f"type_{a}": "病程记录", f"type_{b}": "病程记录",
                         f"type_{d}": "护理记录"})
        assert bad.status_code == 400 and "全部页面" in bad.text
        bad = post_form(c, f"/pageindex/records/{rec.admission_no}",
                        {"order": f"{d},{a},{b}", f"type_{a}": "病程记录",
                         f"type_{b}": "杂项", f"type_{d}": "护理记录"})
        assert bad.status_code == 400 and "未知的页面类型" in bad.text
        assert [p[0] for p in _pages(pirt, rec.id)] == rec.page_ids
        assert _count(pirt, PageOverride) == 0

        calls = len(spy.calls)
        ok = post_form(c, f"/pageindex/records/{rec.admission_no}",
                       {"order": f"{d},{a},{b}", f"type_{a}": "病程记录", f"type_{b}": "病程记录",
                        f"type_{d}": "护理记录"})
        assert ok.status_code in (302, 303)
        assert ok.headers["location"] == f"/pageindex?saved={rec.admission_no}"
    pages = _pages(pirt, rec.id)
    assert [(p[0], p[1], p[2], p[3]) for p in pages] == [
        (d, 1, "护理记录", 1.0), (a, 2, "病程记录", 1.0), (b, 3, "病程记录", 1.0)]
    assert _state(pirt, rec.id) == ("indexed", 3, 0)
    assert len(spy.calls) == calls + 1
    assert [ref.id for ref, _ in spy.calls[-1][1]] == [d, a, b]
    # a later automatic pass keeps what the clerk set
    assert finalize(pirt, rec.id) == "indexed"
    assert _pages(pirt, rec.id) == pages
    with pirt.sessions() as s:
        ev = s.scalars(select(AuditEvent).where(AuditEvent.action == "pageindex.correct")
                       .order_by(AuditEvent.seq)).all()
        assert [e.outcome for e in ev] == ["failed", "failed", "ok"]
        assert ev[-1].mrn == "00601234" and ev[-1].staff_no == "C001"
        assert json.loads(ev[-1].detail)["order"] == [d, a, b]
        images = s.scalars(select(AuditEvent).where(AuditEvent.action == "pageindex.image")).all()
        assert images and images[0].mrn == "00601234"
        denied = s.scalars(select(AuditEvent).where(AuditEvent.action == "page.denied")).all()
        assert len(denied) >= 4


def test_tasks_survive_a_dead_worker(pirt, make_record, capture):
    rec = make_record("ZY2026060003", [(61, "手术记录")])
    capture(pirt, rec)
    dead = claim(pirt, "dead-host:1:1")  # claimed, then the worker died
    assert dead is not None and dead.kind == KIND
    assert run_until_idle(pirt, kinds=[KIND]) == 0  # its lease still runs
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    with pirt.sessions() as s, s.begin():
        s.execute(update(Task).where(Task.id == dead.id).values(lease_until=past))
    assert run_until_idle(pirt, kinds=[KIND]) == 1
    assert _count(pirt, PageText) == 1
    # a worker that stored the text but died before marking the task done
    with pirt.sessions() as s, s.begin():
        s.execute(update(Task).where(Task.id == dead.id).values(
            status="running", locked_by="dead-host:2:1", lease_until=past))
    assert run_until_idle(pirt, kinds=[KIND]) == 1
    assert ocr_task({"page_id": rec.page_ids[0]}, pirt)["chars"] is None  # nothing to redo
    assert _count(pirt, PageText) == 1
    with pirt.sessions() as s:
        t = s.get(Task, dead.id)
        assert (t.status, t.attempts) == ("done", 3)
    assert _state(pirt, rec.id)[0] == "indexed"


def test_broken_image_fails_without_storing_anything(pirt, make_record, capture):
    from bingan.core import pages
    from bingan.core.models import Admission

    rec = make_record("ZY2026060004", [])
    with pirt.sessions() as s, s.begin():
        p = pages.add_page(s, pirt, s.get(Admission, rec.id),
                           pages.NewPage(image=b"\xff\xd8\xff\xe0 not really a jpeg"))
        rec.page_ids.append(p.id)
    capture(pirt, rec)
    assert run_until_idle(pirt, kinds=[KIND]) == 1
    with pirt.sessions() as s:
        t = s.scalar(select(Task).where(Task.kind == KIND))
        assert t.status == "queued" and t.attempts == 1  # retried later, with back-off
        assert "无法解码" in t.last_error
    assert _count(pirt, PageText) == 0
    assert _state(pirt, rec.id)[0] == "pending"


def test_cli_ocr_and_run(pirt, make_record, tmp_path):
    from bingan.core.cli import Ctx, build_cli

    from bingan_pageindex.synth import make_page

    cli = build_cli(pirt)
    obj = Ctx()
    obj._rt = pirt  # the commands run on this runtime (the CLI builds one from the config)
    runner = CliRunner()
    f = tmp_path / "page.jpg"
    f.write_bytes(make_page(71, "麻醉记录", dpi=150, max_lines=2, noise=False).jpeg())
    r = runner.invoke(cli, ["pageindex", "ocr", str(f), "--json"], obj=obj)
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["page_type"] == "麻醉记录" and out["confidence"] >= 0.8
    assert "麻醉记录单" in out["text"].replace(" ", "") and out["blocks"][0]["box"]
    r = runner.invoke(cli, ["pageindex", "ocr", str(f)], obj=obj)
    assert r.exit_code == 0 and "页面类型：麻醉记录" in r.output
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"GIF89a broken")
    r = runner.invoke(cli, ["pageindex", "ocr", str(bad)], obj=obj)
    assert r.exit_code != 0 and "无法解码" in r.output

    rec = make_record("ZY2026060005", [(72, "体温单")])
    r = runner.invoke(cli, ["pageindex", "run", rec.admission_no, "ZY2099000000"], obj=obj)
    assert r.exit_code != 0 and "ZY2099000000" in r.output
    assert _count(pirt, Task, Task.kind == KIND) == 0  # nothing queued
    r = runner.invoke(cli, ["pageindex", "run"], obj=obj)
    assert r.exit_code != 0
    r = runner.invoke(cli, ["pageindex", "run", rec.admission_no, "--wait"], obj=obj)
    assert r.exit_code == 0, r.output
    assert "已排队 1 页" in r.output and "已识别 1 页" in r.output
    assert _pages(pirt, rec.id)[0][2] == "体温单"
    r = runner.invoke(cli, ["pageindex", "run", "--all"], obj=obj)
    assert r.exit_code == 0 and "已排队 0 页" in r.output  # nothing left to OCR
    r = runner.invoke(cli, ["pageindex", "status"], obj=obj)
    assert r.exit_code == 0 and "已索引：1" in r.output

    # reindex: the stored text goes to index_record again, no OCR, nothing else changes
    sent = []

    class Backend:
        @hookimpl
        def index_record(self, admission, pages):
            sent.append((admission.admission_no, [(p.seq, p.page_type, text)
                                                  for p, text in pages]))

    pirt.pm.register(Backend(), name="test-backend")
    waiting = make_record("ZY2026060006", [(73, "医嘱单")])  # captured, not yet OCR'd
    with pirt.sessions() as s:
        tasks_before = s.scalar(select(func.count()).select_from(Task))
        text_before = s.scalar(select(PageText.text).where(PageText.admission_id == rec.id))
    r = runner.invoke(cli, ["pageindex", "reindex", "--all"], obj=obj)
    assert r.exit_code == 0, r.output
    assert "已重新索引 1 份病案" in r.output
    assert sent == [(rec.admission_no, [(1, "体温单", text_before)])]
    r = runner.invoke(cli, ["pageindex", "reindex", waiting.admission_no], obj=obj)
    assert r.exit_code == 0 and "1 份尚有页面待识别" in r.output and len(sent) == 1
    r = runner.invoke(cli, ["pageindex", "reindex", "ZY2099000000"], obj=obj)
    assert r.exit_code != 0 and "ZY2099000000" in r.output
    r = runner.invoke(cli, ["pageindex", "reindex"], obj=obj)
    assert r.exit_code != 0
    with pirt.sessions() as s:  # no OCR task was queued by reindex
        assert s.scalar(select(func.count()).select_from(Task)) == tasks_before
        events = s.scalars(select(AuditEvent.detail).where(
            AuditEvent.action == "pageindex.reindex")).all()
    assert [json.loads(e)["sent"] for e in events] == [1, 0]


def test_list_follows_ocr_with_a_percentage(pirt, make_record, capture):
    from bingan.core.tasks import run_one
    from webutil import login, make_staff, web_client

    rec = make_record("ZY2026060031", [(61, "病案首页"), (62, "出院记录")])
    capture(pirt, rec)
    with pirt.sessions() as s, s.begin():
        ensure_builtin_roles(s)
        s.add(Role(name="indexer", label="索引员", permissions=["pageindex.correct"]))
    make_staff(pirt, "C002", ["indexer"])
    from bingan.core.models import Admission
    from bingan.core.staff import add_department

    with pirt.sessions() as s, s.begin():
        add_department(s, "2001", "普通外科")
        s.get(Admission, rec.id).discharge_department = "2001"
    with web_client(pirt) as c:
        assert login(c, "C002").status_code in (302, 303)
        r = c.get("/pageindex?status=pending")
        assert "已识别 0 / 2 页（0%）" in r.text
        assert "<td>普通外科</td>" in r.text  # the department's name, not its code
        assert f'hx-get="/pageindex/progress/{rec.id}" hx-trigger="every 2s"' in r.text
        assert run_one(pirt, kinds=[KIND]) is not None
        cell = c.get(f"/pageindex/progress/{rec.id}").text
        assert "已识别 1 / 2 页（50%）" in cell and "every 2s" in cell
        run_until_idle(pirt, kinds=[KIND])
        cell = c.get(f"/pageindex/progress/{rec.id}").text
        assert "已索引" in cell and "every 2s" not in cell and "已识别" not in cell
        assert c.get("/pageindex/progress/999999").status_code == 404

"""Acceptance sampling: seeded 5% (at least one) of a batch's digitized records; page-by-page
inspection; a failed record goes to rework and is re-inspected until accepted; spot checks;
the batch report and its Excel export; the pages over HTTP.

The capture plugin is driven here only as test setup (batches, received pages); the qc plugin
itself reaches it through hooks alone."""

from __future__ import annotations

import datetime as dt
import io
import random
import re

import openpyxl
import pytest
from PIL import Image, ImageDraw
from sqlalchemy import select

from bingan.hooks.types import AdmissionIn, PatientIn
from bingan.core import records, tasks
from bingan.core.models import Role
from bingan.core.pages import current_pages
from bingan_qc import sampling as sp
from bingan_qc.models import QcInspection, QcSample, QcSampleItem
from webutil import events, login, make_staff, post_form, web_client
from bingan_qc.settings import QcSettings

UTC = dt.timezone.utc


def _admission(rt, i: int):
    with rt.sessions() as s, s.begin():
        adm, _ = records.upsert_admission(s, rt, AdmissionIn(
            patient=PatientIn(mrn=f"{800000 + i:08d}", name=f"患者{i}"),
            admission_no=f"ZY2026050{i:05d}", visit_no=1,
            admitted_at=dt.datetime(2026, 4, 1, tzinfo=UTC),
            discharged_at=dt.datetime(2026, 4, 9, tzinfo=UTC)))
        return adm.id, adm.admission_no


def _pdf(n: int, seed: int) -> bytes:
    rng = random.Random(seed)
    imgs = []
    for i in range(n):
        im = Image.new("RGB", (500, 700), (250, 250, 245))
        d = ImageDraw.Draw(im)
        for y in range(40, 660, 30):
            d.rectangle((30, y, 30 + rng.randint(100, 420), y + 12), fill=(30, 30, 30))
        imgs.append(im)
    buf = io.BytesIO()
    imgs[0].save(buf, "PDF", resolution=300.0, save_all=True, append_images=imgs[1:])
    return buf.getvalue()


def _capture(rt, admission_no: str, n: int, seed: int = 0, **kw):
    from bingan_capture.ingest import TASK_KIND, receive

    with rt.sessions() as s, s.begin():
        receive(s, rt, _pdf(n, seed), f"{admission_no}-{seed}.pdf", "upload",
                admission_no=admission_no, by="R0001", **kw)
    tasks.run_until_idle(rt, kinds=[TASK_KIND])


def _batch(rt, rows, name="第1批") -> int:
    from bingan_capture.batches import create_batch, parse_text

    with rt.sessions() as s, s.begin():
        return create_batch(s, rt, name, dt.date(2026, 5, 4), 100,
                            parse_text("\n".join(f"{a},{n}" for a, n in rows)), by="R0001").id


def _seen(rt, by: str, adm_id: int) -> None:
    """The inspector opens every current page of the record (as the inspection page does)."""
    from bingan.core import audit
    from bingan.core.models import Admission

    with rt.sessions() as s, s.begin():
        adm = s.get(Admission, adm_id)
        for p in current_pages(s, adm_id):
            audit.record(s, rt, "qc.page.view", actor=audit.Actor(staff_no=by),
                         admission_no=adm.admission_no, detail={"page_id": p.id})


@pytest.fixture
def batch(rt):
    """A batch of 3 records: two digitized (2 and 3 pages), one short of pages."""
    recs = [_admission(rt, i) for i in range(3)]
    bid = _batch(rt, [(recs[0][1], 2), (recs[1][1], 3), (recs[2][1], 4)])
    _capture(rt, recs[0][1], 2, 1)
    _capture(rt, recs[1][1], 3, 2)
    _capture(rt, recs[2][1], 1, 3)
    return bid, recs


def test_sample_size_rule():
    assert [sp.sample_size(n, 0.05) for n in (0, 1, 19, 20, 21, 40, 41, 100, 1000)] == [
        0, 1, 1, 1, 2, 2, 3, 5, 50]
    assert sp.sample_size(3, 0.05, minimum=5) == 3
    ids = list(range(1, 101))
    assert sp.draw(ids, 5, 1234) == sp.draw(list(reversed(ids)), 5, 1234)
    assert sp.draw(ids, 5, 1234) != sp.draw(ids, 5, 4321)


def test_sampling_is_seeded_and_draws_from_digitized_records(rt, batch):
    bid, recs = batch
    rt.settings(QcSettings).seed = 20260504
    with rt.sessions() as s, s.begin():
        # the third record is short of pages: the inspector is asked first, and told
        with pytest.raises(sp.NeedsConfirmation) as asked:
            sp.draw_sample(s, rt, bid, by="Q0001")
        assert [(e.admission_no, e.why) for e in asked.value.excluded] == [
            (recs[2][1], "已采集 1/4 页")]
        assert "1 份病案未完成数字化" in str(asked.value)
        smp = sp.draw_sample(s, rt, bid, by="Q0001", confirm_unfinished=True)
        sid, seed, size, population = smp.id, smp.seed, smp.size, smp.population
        with pytest.raises(sp.QcError, match="已经抽样"):
            sp.draw_sample(s, rt, bid, by="Q0001")
        with pytest.raises(sp.QcError, match="不存在"):
            sp.draw_sample(s, rt, 999, by="Q0001")
    assert (seed, size, population) == (20260504, 1, 2)
    with rt.sessions() as s:
        chosen = [i.admission_id for i in s.scalars(select(QcSampleItem).where(
            QcSampleItem.sample_id == sid))]
    digitized = [recs[0][0], recs[1][0]]
    assert chosen == sp.draw(digitized, 1, seed)  # replayable from the recorded seed
    assert chosen[0] in digitized
    ev = events(rt, "qc.sample")[-1]
    assert '"seed": 20260504' in ev.detail and '"population": 2' in ev.detail
    # a batch without any digitized record cannot be sampled
    lone = _admission(rt, 9)
    bid2 = _batch(rt, [(lone[1], 5)], "空批次")
    with rt.sessions() as s, s.begin():
        with pytest.raises(sp.QcError, match="还没有完成数字化"):
            sp.draw_sample(s, rt, bid2, by="Q0001")


def test_failed_record_goes_to_rework_and_is_reinspected(rt):
    from bingan_capture.models import CaptureRework

    adm_id, adm_no = _admission(rt, 1)
    bid = _batch(rt, [(adm_no, 2)])
    _capture(rt, adm_no, 2, 7)
    with rt.sessions() as s, s.begin():
        smp = sp.draw_sample(s, rt, bid, by="Q0001")
        item_id = s.scalar(select(QcSampleItem.id).where(QcSampleItem.sample_id == smp.id))
    with rt.sessions() as s:
        p1, p2 = current_pages(s, adm_id)
    with rt.sessions() as s, s.begin():
        # nobody opened page 1 yet: it cannot pass
        with pytest.raises(sp.QcError, match="尚未打开查看.*第 1 页"):
            sp.inspect(s, rt, adm_id, [sp.Verdict(p1.id, True),
                                       sp.Verdict(p2.id, False, "印章不清")],
                       by="Q0001", item_id=item_id)
    _seen(rt, "Q0001", adm_id)
    with rt.sessions() as s, s.begin():
        with pytest.raises(sp.QcError, match="第 2 页"):
            sp.inspect(s, rt, adm_id, [sp.Verdict(p1.id, True)], by="Q0001", item_id=item_id)
        with pytest.raises(sp.QcError, match="请填写原因"):
            sp.inspect(s, rt, adm_id, [sp.Verdict(p1.id, True), sp.Verdict(p2.id, False)],
                       by="Q0001", item_id=item_id)
        insp = sp.inspect(s, rt, adm_id, [sp.Verdict(p1.id, True),
                                          sp.Verdict(p2.id, False, "印章不清")],
                          by="Q0001", item_id=item_id, note="第2页红章模糊")
        assert (insp.result, insp.round, insp.failed_pages) == ("fail", 1, 1)
    with rt.sessions() as s:
        assert s.get(QcSampleItem, item_id).status == "failed"
        rw = s.scalars(select(CaptureRework).where(CaptureRework.status == "open")).all()
        assert [(r.page_id, r.origin, r.reason) for r in rw] == [
            (p2.id, "inspection", "抽检不合格：印章不清")]
        rep = sp.report(s, s.get(QcSample, smp.id))
        assert (rep.first_failed, rep.failed_pages, rep.acceptance) == (1, 1, "返工中，待复检")
    # re-capture of the failed page (through capture's rework path) -> waits for re-inspection
    _capture(rt, adm_no, 1, 8, replace_page_id=p2.id, rework_id=rw[0].id)
    with rt.sessions() as s:
        assert s.get(QcSampleItem, item_id).status == "reinspect"
        cur = current_pages(s, adm_id)
        assert cur[0].id == p1.id and cur[1].id != p2.id
    _seen(rt, "Q0002", adm_id)
    with rt.sessions() as s, s.begin():
        with pytest.raises(sp.QcError, match="不属于本病案当前页面"):
            sp.inspect(s, rt, adm_id, [sp.Verdict(p1.id, True), sp.Verdict(p2.id, True),
                                       sp.Verdict(cur[1].id, True)], by="Q0001", item_id=item_id)
        again = sp.inspect(s, rt, adm_id, [sp.Verdict(p.id, True) for p in cur], by="Q0002",
                           item_id=item_id)
        assert (again.result, again.round) == ("pass", 2)
        with pytest.raises(sp.QcError, match="已抽检合格"):
            sp.inspect(s, rt, adm_id, [sp.Verdict(p.id, True) for p in cur], by="Q0002",
                       item_id=item_id)
    with rt.sessions() as s:
        rep = sp.report(s, s.get(QcSample, smp.id))
        assert rep.accepted and rep.acceptance == "验收合格" and rep.reworked == 1
        body = sp.report_xlsx(rep, rt.tz)
    wb = openpyxl.load_workbook(io.BytesIO(body))
    summary = {r[0].value: r[1].value for r in wb["验收汇总"].iter_rows(min_row=3) if r[0].value}
    assert summary["样本量"] == 1 and summary["首检不合格病案"] == 1
    assert summary["返工病案"] == 1 and summary["验收结论"] == "验收合格"
    rows = [[c.value for c in r] for r in wb["样本明细"].iter_rows(min_row=2)]
    assert len(rows) == 1
    assert rows[0][0] == adm_no and rows[0][4:12] == ["不合格", 1, "第2页：印章不清", 1, 2, "合格",
                                                      "Q0002", "合格"]


def test_spot_checks_are_recorded_and_failures_reworked(rt):
    from bingan_capture.models import CaptureRework

    adm_id, adm_no = _admission(rt, 4)
    _capture(rt, adm_no, 2, 11)
    with rt.sessions() as s:
        pages = current_pages(s, adm_id)
    _seen(rt, "R0002", adm_id)
    with rt.sessions() as s, s.begin():
        ok = sp.inspect(s, rt, adm_id, [sp.Verdict(p.id, True) for p in pages], by="R0002",
                        kind="spot")
        bad = sp.inspect(s, rt, adm_id, [sp.Verdict(p.id, True) for p in pages], by="R0002",
                         kind="spot", record_reason="缺第3页（护理记录）")
        assert (ok.result, ok.round, bad.result, bad.round) == ("pass", 1, "fail", 2)
    with rt.sessions() as s:
        spots = s.scalars(select(QcInspection).where(QcInspection.kind == "spot")).all()
        assert len(spots) == 2
        rw = s.scalar(select(CaptureRework))
        assert rw.page_id is None and rw.reason == "现场抽查不合格：缺第3页（护理记录）"
    assert [e.admission_no for e in events(rt, "qc.inspect.spot")] == [adm_no, adm_no]


def _inspector(rt):
    make_staff(rt, "Q0001", ["qc"])
    make_staff(rt, "D0001", ["physician"])


def test_qc_pages_over_http(rt, batch):
    bid, recs = batch
    _inspector(rt)
    with web_client(rt) as c, web_client(rt) as doc:
        login(c, "Q0001")
        r = c.get("/qc")
        assert r.status_code == 200 and "第1批" in r.text
        r = post_form(c, f"/qc/batches/{bid}/sample")
        # one record of three is unfinished: asked, told which, nothing drawn yet
        assert r.status_code == 409 and "仍然抽样" in r.text and recs[2][1] in r.text
        assert "已采集 1/4 页" in r.text and not events(rt, "qc.sample")
        r = post_form(c, f"/qc/batches/{bid}/sample", {"confirm_unfinished": "1"})
        assert r.status_code in (302, 303)
        assert post_form(c, f"/qc/batches/{bid}/sample").status_code == 400
        r = c.get(f"/qc/batches/{bid}")
        assert r.status_code == 200 and "抽检中" in r.text
        item_url = re.search(r'href="(/qc/items/\d+)"', r.text).group(1)
        r = c.get(item_url)
        assert r.status_code == 200
        page_ids = re.findall(r'name="v_(\d+)" value="pass"', r.text)
        assert page_ids
        assert "checked" not in r.text  # no verdict is preset
        r = post_form(c, item_url, {f"v_{p}": "pass" for p in page_ids})
        assert r.status_code == 400 and "尚未打开查看" in r.text
        for p in page_ids[1:]:
            assert c.get(f"/qc/pages/{p}/image").status_code == 200
        img = c.get(f"/qc/pages/{page_ids[0]}/image")
        assert img.status_code == 200 and img.headers["content-type"] == "image/jpeg"
        assert events(rt, "qc.page.view")[-1].staff_no == "Q0001"
        form = {f"v_{p}": "pass" for p in page_ids}
        form[f"v_{page_ids[-1]}"] = "fail"
        r = post_form(c, item_url, form)
        assert r.status_code == 400 and "请填写原因" in r.text
        form[f"r_{page_ids[-1]}"] = "页面倾斜"
        r = post_form(c, item_url, form)
        assert r.status_code in (302, 303)
        r = c.get(f"/qc/batches/{bid}")
        assert "不合格·返工中" in r.text and "页面倾斜" in r.text
        r = c.get(f"/qc/batches/{bid}/report.xlsx")
        assert r.status_code == 200 and "filename*=UTF-8''" in r.headers["content-disposition"]
        wb = openpyxl.load_workbook(io.BytesIO(r.content))
        assert wb["样本明细"].max_row == 2
        assert events(rt, "qc.report.export")
        # spot check by admission number
        r = c.get("/qc/spot", params={"admission": recs[2][1]})
        assert r.status_code == 200 and "现场抽查" in r.text
        assert c.get("/qc/spot", params={"admission": "ZY209999999999"}).status_code == 404
        pids = re.findall(r'name="v_(\d+)" value="pass"', r.text)
        for p in pids:
            c.get(f"/qc/pages/{p}/image")
        r = post_form(c, f"/qc/spot/{recs[2][1]}", {f"v_{p}": "pass" for p in pids})
        assert r.status_code in (302, 303)
        assert recs[2][1] in c.get("/qc").text
        insp_id = re.search(r'href="/qc/inspections/(\d+)"', c.get("/qc").text).group(1)
        assert c.get(f"/qc/inspections/{insp_id}").status_code == 200
        # no qc.inspect: nothing
        login(doc, "D0001")
        assert doc.get("/qc").status_code == 403
        assert doc.get(f"/qc/pages/{page_ids[0]}/image").status_code == 403
    with rt.sessions() as s:
        assert s.scalar(select(Role).where(Role.name == "qc")).permissions == ["qc.inspect"]


def test_batch_is_accepted_only_with_the_sample_passed_and_no_rework_open(rt, batch):
    """The sample passes, but another record of the batch has rework open: not accepted."""
    from bingan_capture.models import CaptureRework

    bid, recs = batch
    rt.settings(QcSettings).seed = 7
    with rt.sessions() as s, s.begin():
        smp = sp.draw_sample(s, rt, bid, by="Q0001", confirm_unfinished=True)
        item = s.scalar(select(QcSampleItem).where(QcSampleItem.sample_id == smp.id))
        item_id, sampled, sid = item.id, item.admission_id, smp.id
    other = next(a for a, _ in recs[:2] if a != sampled)
    # a spot check fails the other digitized record: rework opens for it
    _seen(rt, "R0002", other)
    with rt.sessions() as s, s.begin():
        pages = current_pages(s, other)
        sp.inspect(s, rt, other, [sp.Verdict(p.id, True) for p in pages], by="R0002",
                   kind="spot", record_reason="缺页")
        assert s.scalar(select(CaptureRework).where(CaptureRework.status == "open"))
    _seen(rt, "Q0001", sampled)
    with rt.sessions() as s, s.begin():
        sp.inspect(s, rt, sampled, [sp.Verdict(p.id, True) for p in current_pages(s, sampled)],
                   by="Q0001", item_id=item_id)
    with rt.sessions() as s:
        rep = sp.report(s, s.get(QcSample, sid), rt)
        assert rep.sample_passed and not rep.accepted
        assert rep.acceptance == "样本合格，1 份病案返工未完成"
        assert [e.admission_no for e in rep.open_rework] == [
            next(no for a, no in recs if a == other)]


def test_inspection_page_shows_glare_regions_and_qc_reasons(rt):
    aid, no = _admission(rt, 7)
    _capture(rt, no, 1, 4)
    with rt.sessions() as s, s.begin():
        page = current_pages(s, aid)[0]
        # what process_page records for a photo with a lamp's reflection on the text
        page.steps = dict(page.steps or {}, glare={"spots": 1, "boxes": [[40, 60, 240, 200]]},
                          qc_reasons=["反光：约 6.6 cm² 的文字区域过曝，请核对，位置见图中方框"])
        w, h = page.width, page.height
    _inspector(rt)
    with web_client(rt) as c:
        login(c, "Q0001")
        r = c.get("/qc/spot", params={"admission": no})
        assert r.status_code == 200
        assert f'viewBox="0 0 {w} {h}"' in r.text
        assert '<rect x="40" y="60" width="200" height="140"' in r.text
        assert "反光：约 6.6 cm²" in r.text


def test_home_panel_for_inspectors(rt, batch):
    """The inspector's home page counts her queue (records drawn and waiting, re-inspections)
    and links to /qc; a physician has no QC panel."""
    from homeutil import home_links, home_panels

    bid, _recs = batch
    _inspector(rt)
    with rt.sessions() as s, s.begin():
        smp = sp.draw_sample(s, rt, bid, by="Q0001", confirm_unfinished=True)
        size = smp.size
    with web_client(rt) as c:
        login(c, "Q0001")
        r = c.get("/")
        panel = home_panels(r.text)["qc-queue"]
        assert panel == {"待检病案": str(size), "已返工待复检": "0", "不合格返工中": "0",
                         "我今日已检": "0"}
        assert home_links(r.text)["qc-queue"] == {"/qc"}
        c.cookies.clear()
        login(c, "D0001")
        assert "qc-queue" not in home_panels(c.get("/").text)

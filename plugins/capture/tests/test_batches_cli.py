"""Batches (count check, plan, progress, weekly report) and the command line (hot folder,
import, SANE scanner, cover sheets)."""

from __future__ import annotations

import datetime as dt
import io

import openpyxl
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from bingan.core import tasks
from bingan.core.cli import Ctx, build_cli
from bingan.core.pages import current_pages
from bingan_capture import batches as bt
from bingan_capture.ingest import TASK_KIND, CaptureError, receive
from bingan_capture.models import CaptureBatch, CapturePlan
from bingan_capture.settings import CaptureSettings


def run(rt) -> int:
    return tasks.run_until_idle(rt, kinds=[TASK_KIND])


def _xlsx(rows) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["住院号", "应有页数"])
    for r in rows:
        ws.append(list(r))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _pages(rt, cap, adm, n, seed=0):
    imgs = [cap.page_image(f"第{i}页", seed=seed + i) for i in range(n)]
    buf = io.BytesIO()
    imgs[0].save(buf, "PDF", resolution=300.0, save_all=True, append_images=imgs[1:])
    with rt.sessions() as s, s.begin():
        receive(s, rt, buf.getvalue(), f"{adm.admission_no}-{seed}.pdf", "upload",
                admission_no=adm.admission_no, by="R0001")


def test_batch_count_check_plan_and_weekly_report(rt, cap, two_records):
    a, b = two_records
    c = cap.make_admission(rt, "00555555", "ZY202604000003", 1, "王五")
    rows = bt.parse_rows("list.xlsx", _xlsx([(a.admission_no, 3), (b.barcode, 2),
                                             (c.admission_no, 4)]))
    assert [(r.record, r.expected) for r in rows] == [(a.admission_no, 3), (b.barcode, 2),
                                                      (c.admission_no, 4)]
    # a bad list creates nothing and names every bad row
    bad = bt.parse_text(f"{a.admission_no},3\nZY209999999999,2\n{a.admission_no},5")
    with rt.sessions() as s, s.begin():
        with pytest.raises(CaptureError) as err:
            bt.create_batch(s, rt, "坏批次", dt.date(2026, 5, 4), 4, bad, by="R0001")
    assert "第 2 行" in str(err.value) and "第 3 行" in str(err.value) and "重复" in str(err.value)
    with pytest.raises(CaptureError, match="不是数字"):
        bt.parse_text("ZY202604000001, 三十")
    with rt.sessions() as s:
        assert s.scalar(select(func.count()).select_from(CaptureBatch)) == 0
    start = bt.today(rt.tz) - dt.timedelta(days=1)
    with rt.sessions() as s, s.begin():
        batch = bt.create_batch(s, rt, "第1批", start, 4, rows, by="R0001")
        bid = batch.id
        plan = s.scalars(select(CapturePlan).where(CapturePlan.batch_id == bid)
                         .order_by(CapturePlan.day)).all()
    # 9 expected pages at 4 a working day: 4 + 4 + 1, weekends skipped
    assert [p.planned_pages for p in plan] == [4, 4, 1]
    assert all(p.day.weekday() < 5 for p in plan) and plan[0].day >= start

    _pages(rt, cap, a, 3)
    _pages(rt, cap, b, 1)  # one page short
    run(rt)
    with rt.sessions() as s:
        recs = {r.admission.admission_no: r for r in rt.pm.hook.batch_records(rt=rt, session=s,
                                                                               batch_id=bid)}
        assert rt.pm.hook.batch_records(rt=rt, session=s, batch_id=999) is None
    assert (recs[a.admission_no].captured_pages, recs[a.admission_no].digitized) == (3, True)
    assert (recs[b.admission_no].captured_pages, recs[b.admission_no].digitized) == (1, False)
    assert bt.record_state(recs[b.admission_no]) == "缺页"
    assert bt.record_state(recs[c.admission_no]) == "未采集"

    with rt.sessions() as s:
        prog = bt.progress(s, bid, rt.tz)
        assert sum(prog["actual"]) == 4 and prog["cum_planned"][-1] == 9
        assert prog["actual"][prog["days"].index(bt.today(rt.tz).isoformat())] == 4
        body = bt.weekly_xlsx(s, bid, "采集周进度报告：第1批", rt.tz)
        weeks = bt.weekly(s, bid, rt.tz)
    wb = openpyxl.load_workbook(io.BytesIO(body))
    ws = wb["周进度"]
    assert ws["A1"].value == "采集周进度报告：第1批"
    # a week's rate next to the week's figures, the cumulative rate next to the cumulative ones
    assert [c.value for c in ws[3]][:10] == ["周次", "开始日期", "结束日期", "本周计划页数",
                                            "本周完成页数", "本周完成率(%)", "返工页数", "累计计划",
                                            "累计完成", "累计完成率(%)"]
    data = [[c.value for c in row][:10] for row in ws.iter_rows(min_row=4) if row[0].value]
    assert len(data) == len(weeks) and sum(r[3] for r in data) == 9 and sum(r[4] for r in data) == 4
    assert data[-1][7:9] == [9, 4]
    assert data[-1][9] == weeks[-1].cum_rate == round(4 / 9 * 100, 1)
    assert all(w.cum_rate <= 100 for w in weeks if w.cum_rate is not None)
    assert ws._charts or wb["周进度"]  # the chart is written by xlsxwriter
    check = wb["页数核对"]
    got = {r[1]: r for r in ([c.value for c in row] for row in check.iter_rows(min_row=2))}
    assert got[a.admission_no][4:7] == [3, 3, 0] and got[a.admission_no][9] == "已完成"
    assert got[b.admission_no][4:7] == [2, 1, -1] and got[b.admission_no][9] == "缺页"


def test_hook_capture_batches(rt, cap, two_records):
    a, b = two_records
    with rt.sessions() as s, s.begin():
        bt.create_batch(s, rt, "甲", dt.date(2026, 5, 4), 10, bt.parse_text(
            f"{a.admission_no} 2"), by="R0001")
        bt.create_batch(s, rt, "乙", dt.date(2026, 5, 4), 10, bt.parse_text(
            f"{a.admission_no},1\n{b.admission_no},5"), by="R0001")
    _pages(rt, cap, a, 2)
    run(rt)
    with rt.sessions() as s:
        infos = [i for group in rt.pm.hook.capture_batches(rt=rt, session=s) for i in group]
    assert [(i.name, i.records, i.expected_pages, i.captured_pages, i.digitized)
            for i in infos] == [("乙", 2, 6, 2, 1), ("甲", 1, 2, 2, 1)]


def _cli(rt, *args):
    obj = Ctx()
    obj._rt = rt
    return CliRunner().invoke(build_cli(rt), list(args), obj=obj, catch_exceptions=False)


def test_import_and_cover_sheet_commands(rt, cap, two_records, tmp_path):
    a, b = two_records
    f1 = tmp_path / "p1.png"
    f1.write_bytes(cap.encode(cap.page_image("1"), "PNG"))
    f2 = tmp_path / "bad.pdf"
    f2.write_bytes(b"%PDF-1.7\n garbage")
    res = _cli(rt, "capture", "import", str(f1), str(f2), "--admission", a.admission_no,
               "--process")
    assert res.exit_code == 1
    assert "p1.png：采集 #1，1 页" in res.output and "bad.pdf" in res.output
    with rt.sessions() as s:
        assert len(current_pages(s, a.id)) == 1
    out = tmp_path / "covers.pdf"
    res = _cli(rt, "capture", "cover-sheet", a.admission_no, b.barcode, "-o", str(out))
    assert res.exit_code == 0, res.output
    import pypdfium2 as pdfium

    from bingan_capture.codes import read_codes

    doc = pdfium.PdfDocument(out.read_bytes())
    found = [read_codes(doc[i].render(scale=150 / 72).to_pil()) for i in range(len(doc))]
    assert [(c.record_barcode, c.cover) for c in found] == [(a.barcode, True), (b.barcode, True)]


def test_hook_batch_records(rt, cap, two_records):
    a, b = two_records
    with rt.sessions() as s, s.begin():
        bid = bt.create_batch(s, rt, "核对", dt.date(2026, 5, 4), 10, bt.parse_text(
            f"{a.admission_no},1\n{b.admission_no},2"), by="R0001").id
    _pages(rt, cap, a, 1)
    _pages(rt, cap, b, 2)
    run(rt)
    with rt.sessions() as s, s.begin():
        recs = rt.pm.hook.batch_records(rt=rt, session=s, batch_id=bid)
        assert [(r.admission.admission_no, r.expected_pages, r.captured_pages, r.digitized)
                for r in recs] == [(a.admission_no, 1, 1, True), (b.admission_no, 2, 2, True)]
        # an open rework item (or a failing page) means not digitized
        from bingan.core.records import to_ref
        from bingan.core.models import Admission

        page = current_pages(s, b.id)[0]
        rt.pm.hook.request_rework(rt=rt, session=s, admission=to_ref(s.get(Admission, b.id)),
                                  page_ids=[page.id], reason="模糊", by="Q0001")
        recs = rt.pm.hook.batch_records(rt=rt, session=s, batch_id=bid)
        assert [(r.open_rework, r.digitized) for r in recs] == [(0, True), (1, False)]
        assert rt.pm.hook.batch_records(rt=rt, session=s, batch_id=bid + 1) is None


def test_demo_pages_are_identified_by_barcode(rt, cap):
    """``demo_loaded``: drawn pages go through receive without a record and are identified by
    their cover sheet or label (a small run: 2 records)."""
    from bingan.core.models import Admission
    from bingan.core.records import to_ref
    from bingan_capture.demo import load_demo_pages
    from bingan_capture.models import CaptureFrame

    a = cap.make_admission(rt, "00123456", "ZY202604000001", 1, "张三")
    b = cap.make_admission(rt, "00765432", "ZY202604000002", 2, "李四")
    rt.settings(CaptureSettings).demo_records = 2
    with rt.sessions() as s:
        refs = [to_ref(s.get(Admission, x.id)) for x in (a, b)]
    stats = load_demo_pages(rt, refs, size=(1240, 1754))  # what demo_loaded runs, A4 at 150 DPI
    assert stats["records"] == 2 and stats["files"] == 3
    assert run(rt) == 3  # two records and one loose page
    chosen = refs
    with rt.sessions() as s:
        for ref in chosen:
            assert 4 <= len(current_pages(s, ref.id)) <= 8
        statuses = dict(s.execute(select(CaptureFrame.status, func.count())
                                  .group_by(CaptureFrame.status)).all())
        assert statuses.get("cover") == 2 and statuses.get("unidentified") == 1
        [info] = [i for group in rt.pm.hook.capture_batches(rt=rt, session=s) for i in group]
        assert info.records == 2



def test_hook_expected_pages(rt, cap, two_records):
    """The newest batch holding a record declares its page count (archive checks against it:
    tests/test_digitization_e2e.py)."""
    from bingan.core.records import to_ref
    from bingan.core.models import Admission

    a, b = two_records

    def expected(adm):
        with rt.sessions() as s, s.begin():
            return rt.pm.hook.expected_pages(rt=rt, session=s, admission=to_ref(s.get(Admission, adm.id)))

    assert expected(a) is None  # in no batch: nobody knows
    with rt.sessions() as s, s.begin():
        bt.create_batch(s, rt, "旧批", dt.date(2026, 5, 4), 10,
                        bt.parse_text(f"{a.admission_no},3"), by="R0001")
    assert (expected(a), expected(b)) == (3, None)
    with rt.sessions() as s, s.begin():  # a newer batch re-declares it (paper recounted)
        bt.create_batch(s, rt, "复核批", dt.date(2026, 5, 11), 10,
                        bt.parse_text(f"{a.admission_no},2\n{b.admission_no},5"), by="R0001")
    assert (expected(a), expected(b)) == (2, 5)


def test_batch_list_files_are_read_within_bounds():
    """Issue 9 H1: a capture batch list goes through core.spreadsheets too: a sheet that
    inflates past the limit or holds too many cells is refused with a clear error."""
    import pytest
    from sheet_attacks import SHEET_HEAD, SHEET_TAIL, handmade_xlsx, number_rows

    from bingan_capture import batches as bt
    from bingan_capture.ingest import CaptureError

    huge = handmade_xlsx(SHEET_HEAD.encode() + number_rows(1, 800_000, cols=2)
                         + SHEET_TAIL.encode())
    assert len(huge) < bt.MAX_LIST_BYTES
    with pytest.raises(CaptureError, match="解压后过大"):
        bt.parse_rows("list.xlsx", huge)
    lone = SHEET_HEAD + '<row r="1048576"><c r="A1048576" t="n"><v>2</v></c></row>' + SHEET_TAIL
    with pytest.raises(CaptureError, match="表格内容过多"):
        bt.parse_rows("list.xlsx", handmade_xlsx(lone.encode()))
    with pytest.raises(CaptureError, match=r"另存为"):
        bt.parse_rows("old.xls", b"\xd0\xcf\x11\xe0" + b"\x00" * 64)

"""Batch search: pasted and imported numbers, found and not found, bad files (both backends)."""

from __future__ import annotations

import io

import openpyxl
import pytest

from bingan_search import batch as batch_mod
from bingan_search import service
from bingan_search.settings import SearchSettings


def _xlsx(rows: list[list]) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def run(rt, actor, numbers, kind="auto", **paging):
    return service.batch(rt, batch_mod.BatchInput(numbers), kind,
                         service.Paging(**paging), actor=actor, via="test")


def test_batch_found_and_not_found(rt, recs, cli_actor):
    from webutil import events

    adm = [r.admission_no for r in recs[:5]]
    multi = next(r.mrn for r in recs if sum(x.mrn == r.mrn for x in recs) > 1)
    numbers = [adm[0], "ZY209900000001", adm[1], adm[0], multi, "99999999", adm[2], "  "]
    res = run(rt, cli_actor, [n for n in numbers if n.strip()])
    assert res.submitted == 7 and res.unique == 6 and res.duplicates == [adm[0]]
    assert res.not_found == ["ZY209900000001", "99999999"]
    assert res.found_numbers == 4
    visits = sorted((r.visit_no, r.admission_no) for r in recs if r.mrn == multi)
    want = [adm[0], adm[1]] + [no for _, no in visits] + [adm[2]]
    assert [h.hit.admission_no for h in res.hits] == want  # input order, visits in order
    assert [h.matched_by for h in res.hits].count("mrn") == len(visits)
    assert res.total == len(want)
    ev = events(rt, "search.batch")[-1]
    assert ev.staff_no == "T001" and ev.client_ip == "10.1.2.3" and ev.computer_name == "WS-TEST"
    assert "ZY209900000001" in ev.detail and '"found": 4' in ev.detail

    # kind restricts what a number may be
    only_adm = run(rt, cli_actor, [adm[0], multi], kind="admission_no")
    assert only_adm.not_found == [multi]
    only_mrn = run(rt, cli_actor, [adm[0], multi], kind="mrn")
    assert only_mrn.not_found == [adm[0]]

    # an MRN typed without its leading zeros finds the padded one, reported as typed
    bare = multi.lstrip("0")
    assert bare != multi, "the test data's MRNs start with zeros"
    padded = run(rt, cli_actor, [bare], kind="auto")
    assert padded.not_found == [] and {h.number for h in padded.hits} == {bare}
    assert [h.hit.admission_no for h in padded.hits] == [no for _, no in visits]
    assert {h.hit.mrn for h in padded.hits} == {multi}
    assert run(rt, cli_actor, [bare + "9"], kind="mrn").not_found == [bare + "9"]


def test_batch_pages_and_sort(rt, recs, cli_actor):
    numbers = [r.admission_no for r in recs[:23]] + ["ZY209900000009"]
    p1 = run(rt, cli_actor, numbers, page=1, page_size=10)
    p3 = run(rt, cli_actor, numbers, page=3, page_size=10)
    assert (p1.total, p1.pages, len(p1.hits), len(p3.hits)) == (23, 3, 10, 3)
    assert [h.hit.admission_no for h in p1.hits] == numbers[:10]
    assert [h.hit.admission_no for h in p3.hits] == numbers[20:23]
    by_mrn = run(rt, cli_actor, numbers, page=1, page_size=50, sort="mrn", desc=True)
    mrns = [h.hit.mrn for h in by_mrn.hits]
    assert mrns == sorted(mrns, reverse=True)


def test_read_upload_formats():
    xlsx = _xlsx([["住院号", "备注"], ["ZY202300000001", "x"], [12345678, None],
                  ["ZY202300000002, ZY202300000003"]])
    got = batch_mod.clean(batch_mod.read_upload("list.xlsx", xlsx, 10**6), 100)
    assert got.numbers == ["ZY202300000001", "X", "12345678", "ZY202300000002",
                           "ZY202300000003"]
    assert any("开头的 0" in w for w in got.warnings)
    assert any("备注" in w for w in got.warnings)  # skipped text is reported
    csv_gbk = "病案号\r\n00100001\r\n00100002,00100003\r\n".encode("gb18030")
    got = batch_mod.clean(batch_mod.read_upload("list.csv", csv_gbk, 10**6), 100)
    assert got.numbers == ["00100001", "00100002", "00100003"]
    unicode_txt = "住院号\t备注\r\nZY5\t\r\nZY6\t\r\n".encode("utf-16")  # Excel "Unicode text"
    got = batch_mod.clean(batch_mod.read_upload("list.txt", unicode_txt, 10**6), 100)
    assert got.numbers == ["ZY5", "ZY6"]
    txt = "\ufeffZY1\nZY2；ZY3、ZY4\n".encode("utf-8")
    assert batch_mod.read_upload("a.txt", txt, 10**6).numbers == ["ZY1", "ZY2", "ZY3", "ZY4"]


@pytest.mark.parametrize("name, data, message", [
    ("broken.xlsx", _xlsx([["ZY1"]])[:300], "无法读取 Excel"),
    ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "另存为"),
    ("scan.pdf", b"%PDF-1.7\n\x00\x01\x02binary", "不是文本"),
    ("empty.csv", b"", "空的"),
    ("big.csv", b"ZY1\n" * 400, "文件过大"),
    ("photo.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "不是文本"),
])
def test_bad_files_get_a_clear_error(name, data, message):
    with pytest.raises(batch_mod.BatchError, match=message):
        batch_mod.read_upload(name, data, 1000)


def test_empty_and_oversized_batches_are_refused_and_audited(rt, cli_actor):
    from webutil import events

    with pytest.raises(batch_mod.BatchError, match="没有找到任何号码"):
        run(rt, cli_actor, ["住院号"])

    st = rt.settings(SearchSettings)
    with pytest.raises(batch_mod.BatchError, match="号码过多"):
        run(rt, cli_actor, [f"ZY{i:012d}" for i in range(st.batch_max_numbers + 1)])
    outcomes = [(e.action, e.outcome) for e in events(rt)]
    assert outcomes == [("search.batch", "failed"), ("search.batch", "failed")]


def test_a_huge_sheet_stops_at_the_number_cap():
    """Issue 9 H1: a few hundred KB of xlsx held millions of numbers, all parsed before the
    cap was checked. Reading now stops at the first number past the cap: the sheet's tail is
    broken XML that the reader never reaches."""
    from sheet_attacks import SHEET_HEAD, SHEET_TAIL, handmade_xlsx, number_rows

    head = SHEET_HEAD.replace("<sheetData>", '<dimension ref="A1:J30001"/><sheetData>')
    data = handmade_xlsx(head.encode() + number_rows(1, 30_000) + b'<row r="x"><c><v>broken'
                         + SHEET_TAIL.encode())
    inp = batch_mod.read_upload("numbers.xlsx", data, 10**6, max_numbers=5000)
    assert len(inp.numbers) == 5010  # the row that went past the cap, and no more
    with pytest.raises(batch_mod.BatchError, match="号码过多"):
        batch_mod.clean(inp, 5000)
    # without a number cap the cell bound of core.spreadsheets stops it (300,000 cells)
    with pytest.raises(batch_mod.BatchError, match="表格内容过多"):
        batch_mod.read_upload("numbers.xlsx", data, 10**6)

"""The record store: boxing by a scanned sequence (tracking follows), unboxing and moving
boxes with capacities, labels read back by zxing-cpp at 300 DPI, every lookup key finding the
record with its full path (against a reference filter over generated data), lookups through
core's access decision, borrowing with overdue reminders, statistics and their export."""

from __future__ import annotations

import datetime as dt
import io
import random

import openpyxl
import pypdfium2 as pdfium
import pytest
import zxingcpp
from sqlalchemy import func, select

from bingan.core.models import Admission, Notification
from bingan.core.records import to_ref

from bingan_tracking import service as tracking
from bingan_warehouse import labels, service
from bingan_warehouse.models import BoxedRecord, Movement
from bingan_warehouse.service import Query, WarehouseError
from store_world import ACT, CN, PASSWORD, make_records
from webutil import csrf_token, login, web_client

QC_CHAIN = ["已回收", "待编码", "已编码", "待翻拍", "已翻拍", "已质检"]


def _to_qc(world, recs):
    rt, staff = world.rt, world.staff("REC1")
    for r in recs:
        for st in QC_CHAIN:
            with rt.sessions() as s, s.begin():
                tracking.move(s, rt, s.get(Admission, r.id), st, staff=staff)


def _state(rt, adm_id) -> str:
    with rt.sessions() as s:
        return tracking.state_of(s, tracking.machine(rt), adm_id)[0]


def _store(rt, shelf_capacity=4):
    with rt.sessions() as s, s.begin():
        wh = service.add_warehouse(s, rt, "K01", "一号病案库", "门诊医技楼", "B1", actor=ACT)
        shelves = service.add_shelves(s, rt, wh.id, 1, 2, 2, shelf_capacity, actor=ACT)
        return [sh.code for sh in shelves]


def _boxes(rt, n, capacity, shelf=None):
    with rt.sessions() as s, s.begin():
        sh = service.find_shelf(s, shelf) if shelf else None
        return [b.box_no for b in service.new_boxes(s, rt, n, capacity, actor=ACT, shelf=sh)]


def _run(world, codes, who="CLK1"):
    rt = world.rt
    with rt.sessions() as s, s.begin():
        return service.box_run(s, rt, codes, staff=world.staff(who), actor=ACT)


def test_boxing_by_a_scanned_sequence(world):
    rt = world.rt
    r = world.recs
    _to_qc(world, r[:5])
    shelves = _store(rt, shelf_capacity=1)
    b1, = _boxes(rt, 1, 3, shelf=shelves[0])
    b2, = _boxes(rt, 1, 3)
    assert (b1, b2) == ("BX000001", "BX000002")
    out = _run(world, [r[0].barcode, b1, r[0].barcode, r[1].barcode.lower(), r[0].barcode,
                       r[2].barcode, r[3].barcode, "BX999999", "NOT-A-CODE", b2, r[3].barcode,
                       r[1].barcode, r[4].barcode])
    assert [o.outcome for o in out] == ["no_box", "box", "boxed", "boxed", "same", "boxed",
                                        "full", "unknown_box", "invalid", "box", "boxed",
                                        "other_box", "boxed"]
    assert "BX000001" in out[11].message and "请先出箱" in out[11].message
    with rt.sessions() as s:
        pos = {a: (b, p) for a, b, p in s.execute(select(
            BoxedRecord.admission_id, BoxedRecord.box_id, BoxedRecord.position)).all()}
        box1 = service.find_box(s, b1).id
    assert [pos[x.id] for x in r[:3]] == [(box1, 1), (box1, 2), (box1, 3)]
    # box 1 is on a shelf: its records are shelved; box 2 waits on the table
    assert [_state(rt, x.id) for x in r[:5]] == ["已上架"] * 3 + ["已装箱"] * 2
    with rt.sessions() as s:
        tl = tracking.timeline(s, r[0].id)
    assert tl[-2].source == "event:boxed" and tl[-1].source == "event:shelved"
    assert "一号病案库" in tl[-1].location and b1 in tl[-1].location
    # the shelf holds one box: box 2 goes to the other shelf; then its records are shelved
    with rt.sessions() as s, s.begin(), pytest.raises(WarehouseError, match="已满"):
        service.move_box(s, rt, service.find_box(s, b2), service.find_shelf(s, shelves[0]),
                         staff_no="CLK1", actor=ACT)
    with rt.sessions() as s, s.begin():
        service.move_box(s, rt, service.find_box(s, b2),
                         service.find_shelf(s, "SH" + shelves[1]), staff_no="CLK1", actor=ACT)
    assert _state(rt, r[3].id) == _state(rt, r[4].id) == "已上架"
    # unboxing takes the record out and tracking back to 已质检
    with rt.sessions() as s, s.begin():
        service.unbox(s, rt, r[1].id, staff_no="CLK1", actor=ACT, note="补单")
    assert _state(rt, r[1].id) == "已质检"
    with rt.sessions() as s:
        assert s.get(BoxedRecord, r[1].id) is None
        kinds = dict(s.execute(select(Movement.kind, func.count())
                               .group_by(Movement.kind)).all())
    assert kinds == {"boxed": 5, "shelved": 1, "unboxed": 1}  # box 1 was shelved empty: none
    # bad input moves nothing
    n = sum(kinds.values())
    with pytest.raises(WarehouseError, match="一次最多扫描 2 个条码"):
        service.parse_scans("a b c", 2)
    with pytest.raises(WarehouseError, match="请先扫描箱号条码"):
        service.parse_scans("  ", 10)
    with rt.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Movement)) == n
    # the page: a clerk scans a run
    with web_client(rt) as c:
        assert login(c, "CLK1", PASSWORD).status_code in (302, 303)
        res = c.post("/warehouse/boxing", data={"codes": f"{b1}\n{r[1].barcode}"},
                     headers={"x-csrftoken": csrf_token(c)})
        assert res.status_code == 200, res.text
        assert "已装箱 1" in res.text and "开始装箱 1" in res.text
        res = c.post("/warehouse/boxing", data={"codes": ""}, headers={"x-csrftoken": csrf_token(c)})
        assert res.status_code == 400


def _path(wh, sh, box) -> str:
    return f"门诊医技楼 / B1 / 一号病案库（K01） / 货架 {sh} / 箱 {box}" if wh == "K01" else (
        f"行政综合楼 / 3F / 二号病案库（K02） / 货架 {sh} / 箱 {box}")


def test_every_lookup_key_finds_the_record_with_its_full_path(world):
    """Generated records spread over two warehouses, shelves and boxes (some not boxed, one
    box not shelved): for every record and every key, the lookup answers exactly what a
    reference filter over the generated data answers, and shows the record's full path."""
    rt = world.rt
    recs = world.recs + make_records(rt, 24, seed=7, start=100)
    with rt.sessions() as s, s.begin():
        k1 = service.add_warehouse(s, rt, "K01", "一号病案库", "门诊医技楼", "B1", actor=ACT)
        k2 = service.add_warehouse(s, rt, "K02", "二号病案库", "行政综合楼", "3F", actor=ACT)
        sh = [x.code for x in service.add_shelves(s, rt, k1.id, 1, 2, 1, 5, actor=ACT)
              + service.add_shelves(s, rt, k2.id, 1, 1, 2, 5, actor=ACT)]
    boxes = []
    for code in sh:
        boxes += [(b, code) for b in _boxes(rt, 1, 10, shelf=code)]
    boxes.append((_boxes(rt, 1, 10)[0], None))
    rnd = random.Random(3)
    where: dict[int, tuple[str, str | None] | None] = {}
    order = recs[:]
    rnd.shuffle(order)
    for i, rec in enumerate(order):
        where[rec.id] = boxes[i % len(boxes)] if i < len(order) - 6 else None
    for box, _ in boxes:
        inside = [r.barcode for r in order if where[r.id] and where[r.id][0] == box]
        assert all(o.ok for o in _run(world, [box] + inside, who="REC1"))

    def wh_of(rec):
        w = where[rec.id]
        if not w or not w[1]:
            return None
        return "K01" if w[1].startswith("K01") else "K02"

    def expected_path(rec):
        w = where[rec.id]
        if w is None:
            return "未装箱"
        if w[1] is None:
            return f"箱 {w[0]}（未上架）"
        return _path(wh_of(rec), w[1], w[0])

    names = {"K01": ("一号病案库", "门诊医技楼"), "K02": ("二号病案库", "行政综合楼")}

    def reference(q: Query) -> set[int]:
        out = set()
        for rec in recs:
            w = where[rec.id]
            day = rec.discharged.astimezone(rt.tz).date()
            if q.name and not (rec.name.startswith(q.name) if not q.name.isascii() else
                               rec.pinyin.startswith(q.name.lower())
                               or rec.initials.startswith(q.name.lower())):
                continue
            if q.mrn and rec.mrn != q.mrn or q.admission_no and rec.admission_no != q.admission_no:
                continue
            if q.discharged_from and day < q.discharged_from:
                continue
            if q.discharged_to and day > q.discharged_to:
                continue
            if q.box_no and (not w or w[0] != q.box_no):
                continue
            if q.warehouse and wh_of(rec) != q.warehouse:
                continue
            if q.location:
                wh = wh_of(rec)
                if not wh or not (q.location in names[wh][0] or q.location in names[wh][1]
                                  or q.location.upper() in w[1]):
                    continue
            out.add(rec.id)
        return out

    checked = 0
    for rec in recs:
        day = rec.discharged.astimezone(rt.tz).date()
        w = where[rec.id]
        keys = [Query(name=rec.name), Query(name=rec.name[:2]), Query(name=rec.pinyin[:4]),
                Query(name=rec.pinyin),
                Query(name=rec.initials.upper()), Query(mrn=rec.mrn),
                Query(admission_no=rec.admission_no),
                Query(discharged_from=day, discharged_to=day)]
        if w:
            keys.append(Query(box_no=w[0]))
            if w[1]:
                wh = wh_of(rec)
                keys += [Query(warehouse=wh), Query(location=names[wh][0]),
                         Query(location=names[wh][1][:3]), Query(location=w[1].lower()),
                         Query(name=rec.name[0], warehouse=wh)]
        for q in keys:
            with rt.sessions() as s:
                found, more = service.lookup(s, rt, q, limit=500)
            got = {f.admission_id: f for f in found}
            assert not more and set(got) == reference(q), q
            assert rec.id in got, q
            assert got[rec.id].path == expected_path(rec), q
            assert got[rec.id].state == "待回收"  # tracking's state shown with the path
            checked += 1
    assert checked > 200
    with rt.sessions() as s, pytest.raises(WarehouseError, match="至少填写一个"):
        service.lookup(s, rt, Query())
    with pytest.raises(WarehouseError, match="格式"):
        service.parse_query({"discharged_from": "2025-13-01"})


def test_lookup_page_goes_through_the_access_decision(world):
    rt = world.rt
    r = world.recs[0]
    _store(rt)
    b, = _boxes(rt, 1, 5)
    _run(world, [b, r.barcode])
    with web_client(rt) as c:
        assert login(c, "REC1", PASSWORD).status_code in (302, 303)
        res = c.get("/warehouse/find", params={"mrn": r.mrn})
        assert res.status_code == 200 and r.name in res.text and f"箱 {b}（未上架）" in res.text
        res = c.get("/warehouse/find", params={"discharged_from": "bad"})
        assert res.status_code == 400 and "格式" in res.text
    # the clerk boxes records but may not read them: the row is hidden, counted
    with web_client(rt) as c:
        assert login(c, "CLK1", PASSWORD).status_code in (302, 303)
        res = c.get("/warehouse/find", params={"mrn": r.mrn})
        assert res.status_code == 200 and r.name not in res.text and "无权查阅" in res.text
        res = c.get(f"/warehouse/boxes/{b}")
        assert res.status_code == 200 and r.name not in res.text and r.barcode in res.text
    with web_client(rt) as c:
        assert login(c, "PHY1", PASSWORD).status_code in (302, 303)
        assert c.get("/warehouse/find", params={"mrn": r.mrn}).status_code == 403


def _decode_pages(pdf: bytes):
    doc = pdfium.PdfDocument(pdf)
    out = []
    for page in doc:
        img = page.render(scale=300 / 72).to_pil()
        out.append([(b.format.name, b.text) for b in zxingcpp.read_barcodes(img)])
    return out


def test_labels_read_back_at_300_dpi(world):
    rt = world.rt
    shelves = _store(rt)
    b1, b2 = _boxes(rt, 2, 5, shelf=shelves[0])
    _run(world, [b1] + [r.barcode for r in world.recs[:3]])
    with web_client(rt) as c:
        assert login(c, "CLK1", PASSWORD).status_code in (302, 303)
        res = c.get("/warehouse/labels/boxes.pdf", params={"box": [b1, b2]})
        assert res.status_code == 200 and res.headers["content-type"] == "application/pdf"
        assert _decode_pages(res.content) == [[("Code128", b1)], [("Code128", b2)]]
        text = pdfium.PdfDocument(res.content)[0].get_textpage().get_text_range()
        assert world.recs[0].admission_no in text and world.recs[2].admission_no in text
        assert "一号病案库" in text and "共 3/5 份" in text
        res = c.get("/warehouse/labels/shelves.pdf", params={"warehouse": "K01"})
        assert _decode_pages(res.content) == [[("Code128", "SH" + code)] for code in shelves]
        # the recovery plugin's record labels: the clerk may not read the records
        assert c.get(f"/warehouse/boxes/{b1}/records.pdf").status_code == 404
    with web_client(rt) as c:
        assert login(c, "REC1", PASSWORD).status_code in (302, 303)
        res = c.get(f"/warehouse/boxes/{b1}/records.pdf")
        assert res.status_code == 200
        assert _decode_pages(res.content) == [[("Code128", r.barcode)] for r in world.recs[:3]]
    # a label size the settings allow, drawn directly
    pdf = labels.box_label_pdf([labels.BoxLabel("BX000123", 0, 40, "", "", "箱 BX000123（未上架）")],
                               (60.0, 40.0))
    assert _decode_pages(pdf) == [[("Code128", "BX000123")]]


def test_borrowing_with_overdue_reminders(world):
    rt = world.rt
    r, r2 = world.recs[0], world.recs[1]
    _to_qc(world, [r])
    shelves = _store(rt)
    b, = _boxes(rt, 1, 5, shelf=shelves[0])
    _run(world, [b, r.barcode])
    assert _state(rt, r.id) == "已上架"
    # the physician asks through the link the hook gives
    with rt.sessions() as s:
        ref = to_ref(s.get(Admission, r.id))
    link = rt.pm.hook.paper_record_request(admission=ref, user=world.staff("PHY1"), rt=rt)
    with web_client(rt) as c:
        assert login(c, "PHY1", PASSWORD).status_code in (302, 303)
        res = c.get(link.href)
        assert res.status_code == 200 and r.barcode in res.text
        due = (dt.datetime.now(CN).date() + dt.timedelta(days=10)).isoformat()
        res = c.post("/warehouse/loans/request", data={"barcode": r.barcode, "reason": "科研",
                                                       "due_back": due},
                     headers={"x-csrftoken": csrf_token(c)}, follow_redirects=False)
        assert res.status_code == 303
        res = c.post("/warehouse/loans/request", data={"barcode": r.barcode, "reason": "再借"},
                     headers={"x-csrftoken": csrf_token(c)})
        assert res.status_code == 400 and "已有借阅申请" in res.text
        res = c.post("/warehouse/loans/request", data={"barcode": r2.barcode, "reason": ""},
                     headers={"x-csrftoken": csrf_token(c)})
        assert res.status_code == 400 and "请填写借阅原因" in res.text
        assert "待出借" in c.get("/warehouse/loans/mine").text
    with rt.sessions() as s:
        (row,) = service.loans(s, rt, statuses=("requested",))
    assert row.place.endswith(f"箱 {b}") and row.borrower == "陈主治"
    with web_client(rt) as c:
        assert login(c, "CLK1", PASSWORD).status_code in (302, 303)
        res = c.post(f"/warehouse/loans/{row.id}/lend", headers={"x-csrftoken": csrf_token(c)})
        assert res.status_code == 200 and "已出借" in res.text
    assert _state(rt, r.id) == "借出"
    # boxing a lent record is refused
    assert _run(world, [b, r.barcode])[1].outcome == "same"
    # overdue: one reminder a day to the borrower
    late = dt.date.fromisoformat(due) + dt.timedelta(days=2)
    assert service.remind_overdue(rt, today=late) == 1
    assert service.remind_overdue(rt, today=late) == 0
    assert service.remind_overdue(rt, today=late + dt.timedelta(days=1)) == 1
    with rt.sessions() as s:
        notes = s.scalars(select(Notification.body).order_by(Notification.id)).all()
    assert len(notes) == 2 and "已超期 2 天" in notes[0] and r.admission_no in notes[0]
    with rt.sessions() as s:
        (lent,) = service.loans(s, rt, statuses=("lent",), today=late)
    assert lent.overdue_days == 2
    # returned by scanning: back on the shelf
    with web_client(rt) as c:
        assert login(c, "CLK1", PASSWORD).status_code in (302, 303)
        res = c.post("/warehouse/loans/return", data={"code": r.barcode},
                     headers={"x-csrftoken": csrf_token(c)})
        assert res.status_code == 200 and "已归还" in res.text
        res = c.post("/warehouse/loans/return", data={"code": r.barcode},
                     headers={"x-csrftoken": csrf_token(c)})
        assert res.status_code == 400 and "没有借出记录" in res.text
    assert _state(rt, r.id) == "已上架"
    # at the counter, then a refusal with an answer to the applicant
    phy = world.staff("PHY1")
    with rt.sessions() as s, s.begin():
        service.lend_direct(s, rt, r2.admission_no, "PHY1", "会诊", None, staff_no="CLK1",
                            actor=ACT)
        with pytest.raises(WarehouseError, match="已有借阅申请或已借出"):
            service.lend_direct(s, rt, r2.barcode, "PHY1", "会诊", None, staff_no="CLK1")
        with pytest.raises(WarehouseError, match="没有工号为 NOBODY"):
            service.lend_direct(s, rt, world.recs[2].barcode, "nobody", "会诊", None,
                                staff_no="CLK1")
        ln = service.request_loan(s, rt, s.get(Admission, world.recs[3].id),
                                  phy, "教学", None)
        service.reject(s, rt, ln.id, "原件正在修复", staff_no="CLK1", actor=ACT)
    with rt.sessions() as s:
        assert "原件正在修复" in s.scalars(select(Notification.body)
                                        .order_by(Notification.id.desc())).first()


def test_hook_paper_record_request(world):
    rt = world.rt
    with rt.sessions() as s:
        ref = to_ref(s.get(Admission, world.recs[0].id))
    link = rt.pm.hook.paper_record_request(admission=ref, user=world.staff("PHY1"), rt=rt)
    assert link.label == "申请调阅纸质病案"
    assert link.href == f"/warehouse/loans/request?barcode={world.recs[0].barcode}"
    # the auditor reads no records and asks for none
    assert rt.pm.hook.paper_record_request(admission=ref, user=world.staff("AUD1"), rt=rt) is None
    # the record page (core's) shows where the paper record is and offers both links
    b, = _boxes(rt, 1, 5)
    _run(world, [b, world.recs[0].barcode])
    with web_client(rt) as c:
        assert login(c, "REC1", PASSWORD).status_code in (302, 303)
        res = c.get(f"/records/{world.recs[0].admission_no}")
        assert res.status_code == 200, res.text
        assert 'id="wh-panel"' in res.text and f"箱 {b}（未上架）" in res.text
        assert "申请调阅纸质病案" in res.text and "/tracking/record?code=" in res.text
    # the tracking timeline offers it
    with web_client(rt) as c:
        assert login(c, "REC1", PASSWORD).status_code in (302, 303)
        res = c.get("/tracking/record", params={"code": world.recs[0].barcode})
        assert res.status_code == 200 and 'id="tk-ask"' in res.text
        assert f"/warehouse/loans/request?barcode={world.recs[0].barcode}" in res.text


def test_statistics_and_export(world):
    rt = world.rt
    shelves = _store(rt)
    b1, b2 = _boxes(rt, 2, 5, shelf=shelves[0])
    _run(world, [b1] + [r.barcode for r in world.recs[:5]] + [b2]
         + [r.barcode for r in world.recs[5:7]])
    with rt.sessions() as s:
        (k1,) = service.per_warehouse(s)
        per_shelf = {o.key: o for o in service.per_shelf(s, "K01")}
        per_box = {o.key: o.records for o in service.per_box(s, shelves[0])}
        months = service.movements_per_month(s, rt, 3)
    assert (k1.shelves, k1.box_capacity, k1.boxes, k1.records, k1.capacity) == (4, 16, 2, 7, 10)
    assert k1.occupancy == 70.0 and k1.box_occupancy == 12.5
    assert per_shelf[shelves[0]].records == 7 and per_shelf[shelves[1]].records == 0
    assert per_box == {b1: 5, b2: 2}
    assert months[-1][1]["boxed"] == 7 and months[-1][1]["shelved"] == 0
    with web_client(rt) as c:
        assert login(c, "REC1", PASSWORD).status_code in (302, 303)
        res = c.get("/warehouse/stats", params={"warehouse": "K01", "shelf": shelves[0]})
        assert res.status_code == 200 and "70.0%" in res.text and b2 in res.text
        assert c.get("/api/warehouse/stats").json()["warehouses"][0]["records"] == 7
        res = c.get("/warehouse/stats.xlsx")
        assert res.status_code == 200
        wb = openpyxl.load_workbook(io.BytesIO(res.content))
        assert wb.sheetnames == ["库房", "货架", "每月出入库"]
        assert [c.value for c in wb["库房"][4]][:7] == ["K01", "一号病案库（门诊医技楼 B1）", 4, 16,
                                                       2, 12.5, 7]
        assert c.get("/warehouse/stats", params={"warehouse": "K09"}).status_code == 400


def test_occupancy_report_in_the_registry(world):
    """库房占用率 on the reports page: per warehouse and per shelf, fill rates with the totals
    as ratios of sums, the period's boxing and unboxing, boxes on no shelf as their own row,
    the same figures in Excel; only for staff who see the warehouse."""
    rt = world.rt
    shelves = _store(rt)
    b1, b2 = _boxes(rt, 2, 5, shelf=shelves[0])
    _boxes(rt, 1, 8)  # on no shelf yet
    _run(world, [b1] + [r.barcode for r in world.recs[:5]] + [b2]
         + [r.barcode for r in world.recs[5:7]])
    with rt.sessions() as s, s.begin():
        service.unbox(s, rt, world.recs[6].id, staff_no="REC1", note="调整")
    with web_client(rt) as c:
        assert login(c, "REC1", PASSWORD).status_code in (302, 303)
        res = c.get("/api/reports/warehouse.occupancy", params={"group": "warehouse"})
        assert res.status_code == 200, res.text
        body = res.json()
        rows = {r["place"]: r for r in body["rows"]}
        k1 = rows["一号病案库"]
        assert (k1["shelves"], k1["box_capacity"], k1["boxes"], k1["records"],
                k1["capacity"]) == (4, 16, 2, 6, 10)
        assert (k1["box_rate"], k1["rate"], k1["boxed"], k1["unboxed"]) == (12.5, 60.0, 7, 1)
        loose = rows["未上架的病案箱（1 箱）"]
        assert (loose["boxes"], loose["records"], loose["capacity"]) == (0, 0, 8)
        assert body["total"]["rate"] == round(100 * 6 / 18, 1)  # a ratio of the sums
        assert body["total"]["box_rate"] == 12.5
        shelf_rows = c.get("/api/reports/warehouse.occupancy",
                           params={"group": "shelf"}).json()["rows"]
        by = {r["place"]: r for r in shelf_rows}
        assert by[f"一号病案库 {shelves[0]}"]["records"] == 6
        assert by[f"一号病案库 {shelves[1]}"]["records"] == 0
        # a period before anything happened: the stock is there, no scans in it
        old = c.get("/api/reports/warehouse.occupancy",
                    params={"start": "2020-01-01", "end": "2020-01-31"}).json()["rows"]
        assert {r["place"]: (r["records"], r["boxed"]) for r in old}["一号病案库"] == (6, 0)
        page = c.get("/reports/view/warehouse.occupancy", params={"group": "shelf"})
        assert page.status_code == 200 and "按货架" in page.text and "60.0%" in page.text
        assert "库房占用率" in c.get("/reports").text
        xl = c.get("/reports/view/warehouse.occupancy/xlsx")
        assert xl.status_code == 200
        ws = openpyxl.load_workbook(io.BytesIO(xl.content)).active
        values = [[cell.value for cell in row] for row in ws.iter_rows()]
        assert values[3][:3] == ["库房 / 货架", "货架层位", "可放箱数"]
        assert values[4][0] == "一号病案库" and values[4][7] == 60.0
        assert values[-1][0] == "合计"
        c.cookies.clear()
        assert login(c, "PHY1", PASSWORD).status_code in (302, 303)
        assert c.get("/api/reports/warehouse.occupancy").status_code == 403


def test_home_panels_for_loans(world):
    """The record room sees the loans to hand out and those overdue; a borrower his own paper
    records out (only while he has any); an auditor none of it."""
    from sqlalchemy import update

    from bingan_warehouse.models import Loan
    from homeutil import home_links, home_panels

    rt = world.rt
    recs = world.recs[:3]
    phy = world.staff("PHY1")
    today = dt.datetime.now(CN).date()
    with rt.sessions() as s, s.begin():
        for r, days in ((recs[0], 10), (recs[1], 2)):
            service.lend_direct(s, rt, r.barcode, "PHY1", "会诊", today + dt.timedelta(days=days),
                                staff_no="REC1")
        service.request_loan(s, rt, s.get(Admission, recs[2].id), phy, "科研", None)
    with rt.sessions() as s, s.begin():  # one of them is overdue (the clock cannot move)
        s.execute(update(Loan).where(Loan.admission_id == recs[0].id).values(
            due_back=today - dt.timedelta(days=2)))
    with web_client(rt) as c:
        assert login(c, "REC1", PASSWORD).status_code in (302, 303)
        r = c.get("/")
        room = home_panels(r.text)["warehouse-loans"]
        assert room == {"待出借的调阅申请": "1", "借出未还": "2", "3 天内到期": "1",
                        "超期未还": "1"}
        assert home_links(r.text)["warehouse-loans"] == {"/warehouse/loans"}
        assert "warehouse-mine" not in home_panels(r.text)  # REC1 borrowed nothing
        c.cookies.clear()
        assert login(c, "PHY1", PASSWORD).status_code in (302, 303)
        r = c.get("/")
        panels = home_panels(r.text)
        assert "warehouse-loans" not in panels
        assert panels["warehouse-mine"] == {"申请中": "1", "借阅中": "2", "已超期，请归还": "1"}
        assert c.get("/warehouse/loans/mine").status_code == 200
        c.cookies.clear()
        assert login(c, "AUD1", PASSWORD).status_code in (302, 303)
        panels = home_panels(c.get("/").text)
        assert not {"warehouse-loans", "warehouse-mine"} & set(panels)

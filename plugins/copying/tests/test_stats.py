"""Copy statistics by day, month, purpose, department and operator with fees; the Excel
export carries the same figures; bad ranges are a clear 400."""

from __future__ import annotations

import datetime as dt
import io

import openpyxl
from sqlalchemy import update

from bingan.core import audit

from bingan_copying import service, stats
from bingan_copying.models import CopyRequest
from copy_world import A1, A2, PASSWORD, id_card_jpeg
from webutil import login, web_client
from bingan_copying.settings import CopyingSettings

CN = dt.timezone(dt.timedelta(hours=8))


def _req(world, staff, adm, n_pages, copies, purpose, when):
    rt = world.rt
    with rt.sessions() as s, s.begin():
        req = service.register(s, rt, world.staff(staff), audit.Actor(staff_no=staff),
                               service.RequestIn(
                                   applicant_type="patient", applicant_name="王小明",
                                   purpose=purpose, admission_nos=[adm],
                                   page_ids=world.page_ids(adm)[:n_pages], copies=copies,
                                   consent=True, documents=[service.DocumentIn(
                                       "patient_id", "upload", id_card_jpeg())]))
        s.execute(update(CopyRequest).where(CopyRequest.id == req.id).values(created_at=when))
        return req.request_no


def _seed(world):
    d1 = dt.datetime(2026, 11, 30, 10, tzinfo=CN)
    d2 = dt.datetime(2026, 12, 1, 9, tzinfo=CN)
    _req(world, "REC1", A1, 4, 2, "insurance", d1)     # 8 pages, 4.00
    _req(world, "REC2", A2, 3, 1, "litigation", d2)    # 3 pages, 1.50
    _req(world, "REC1", A2, 2, 3, "insurance", d2)     # 6 pages, 3.00
    no = _req(world, "REC1", A1, 1, 1, "insurance", d2)
    with world.rt.sessions() as s, s.begin():  # a rejected request does not count
        s.execute(update(CopyRequest).where(CopyRequest.request_no == no)
                  .values(status="rejected"))


def test_groups_and_fees(world):
    rt = world.rt
    _seed(world)
    st = rt.settings(CopyingSettings)
    with rt.sessions() as s:
        def rows(group, start=dt.date(2026, 11, 1), end=dt.date(2026, 12, 31)):
            return [(r.label, r.requests, r.copies, r.pages, r.fee_fen)
                    for r in stats.compute(s, st, start, end, group, rt.tz)]
        assert rows("day") == [("2026-11-30", 1, 2, 8, 400), ("2026-12-01", 2, 4, 9, 450)]
        assert rows("month") == [("2026-11", 1, 2, 8, 400), ("2026-12", 2, 4, 9, 450)]
        assert rows("purpose") == [("商业保险理赔", 2, 5, 14, 700), ("诉讼/仲裁", 1, 1, 3, 150)]
        assert rows("operator") == [("周病案（REC1）", 2, 5, 14, 700),
                                    ("吴窗口（REC2）", 1, 1, 3, 150)]
        assert rows("department") == [("心血管内科（1001）", 3, 6, 17, 850)]
        assert rows("day", dt.date(2026, 12, 1), dt.date(2026, 12, 1)) == [
            ("2026-12-01", 2, 4, 9, 450)]


def test_page_excel_and_api(world):
    rt = world.rt
    _seed(world)
    q = {"start": "2026-11-01", "end": "2026-12-31", "group": "purpose"}
    with web_client(rt) as c:
        login(c, "REC1", PASSWORD)
        r = c.get("/copying/stats", params=q)
        assert r.status_code == 200 and "商业保险理赔" in r.text and "8.50" in r.text
        assert "echarts.min.js" in r.text
        j = c.get("/api/copying/stats", params=q).json()
        assert j["labels"] == ["商业保险理赔", "诉讼/仲裁"] and j["fees"] == [7.0, 1.5]
        r = c.get("/copying/stats.xlsx", params=q)
        assert r.status_code == 200
        ws = openpyxl.load_workbook(io.BytesIO(r.content)).active
        body = [[c.value for c in row] for row in ws.iter_rows(min_row=4, max_col=5)]
        assert body == [["商业保险理赔", 2, 5, 14, 7.0], ["诉讼/仲裁", 1, 1, 3, 1.5],
                        ["合计", 3, 6, 17, 8.5]]
        r = c.get("/copying/stats", params={"start": "2026-12-31", "end": "2026-01-01"})
        assert r.status_code == 400 and "早于" in r.text
        assert c.get("/api/copying/stats", params={"start": "x"}).status_code == 400
    with web_client(rt) as c:
        login(c, "PHY1", PASSWORD)
        assert c.get("/copying/stats").status_code == 403

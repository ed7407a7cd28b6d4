"""Uploads from the ward phone: per-item outcomes (recovered, someone else's, unknown,
misread, still in hospital), a replay that changes nothing, a bad upload that writes nothing;
the ward's receipt as ESC/POS bytes equal to python-escpos's own output for that receipt,
and as a page."""

from __future__ import annotations

import datetime as dt

from escpos.printer import Dummy
from sqlalchemy import func, select

from bingan.core import records
from bingan.core.models import AuditEvent

from bingan_recovery.models import Handover, Recovery, Scan
from ward_world import CN, PASSWORD, RECORDS
from webutil import csrf_token, login, web_client

T0 = dt.datetime(2026, 12, 7, 9, 0, tzinfo=CN)


def _item(cid: str, code: str, minute: int) -> dict:
    return {"client_id": cid, "barcode": code,
            "scanned_at": (T0 + dt.timedelta(minutes=minute)).isoformat()}


def _counts(rt) -> tuple[int, int, int, int]:
    with rt.sessions() as s:
        return (s.scalar(select(func.count()).select_from(Recovery)),
                s.scalar(select(func.count()).select_from(Scan)),
                s.scalar(select(func.count()).select_from(Handover)),
                s.scalar(select(func.count()).select_from(AuditEvent)
                         .where(AuditEvent.action == "recovery.recover")))


def _post(c, body):
    return c.post("/api/recovery/upload", json=body, headers={"x-csrftoken": csrf_token(c)})


def test_upload_outcomes_replay_and_receipt(world):
    rt = world.rt
    r0, r1, r2, r3, r4 = (world.rec(r.admission_no) for r in RECORDS)
    unknown = records.record_barcode("00799999", 1)
    body = {"handover_id": "h1-aaaaaaaaaaaa", "ward": "心内一病区", "started_at": T0.isoformat(),
            "items": [_item("i1-aaaaaaaaaaaa", r0.barcode, 1),
                      _item("i2-aaaaaaaaaaaa", r1.barcode.lower(), 2),
                      _item("i3-aaaaaaaaaaaa", unknown, 3),
                      _item("i4-aaaaaaaaaaaa", "BA123", 4),
                      _item("i5-aaaaaaaaaaaa", r4.barcode, 5)]}
    with web_client(rt) as c:
        assert login(c, "CLK1", PASSWORD).status_code in (302, 303)
        # a bad upload is refused whole
        bad = dict(body, items=body["items"] + [{"client_id": "x", "barcode": "1"}])
        res = _post(c, bad)
        assert res.status_code == 400 and "编号无效" in res.json()["error"]
        res = _post(c, dict(body, started_at="0001-01-01T00:00:00+14:00"))
        assert res.status_code == 400 and "超出范围" in res.json()["error"]
        assert _counts(rt) == (0, 0, 0, 0)
        res = _post(c, body)
        assert res.status_code == 200, res.text
        first = res.json()
        got = [(x["client_id"][:2], x["outcome"], x["replayed"]) for x in first["results"]]
        assert got == [("i1", "recovered", False), ("i2", "recovered", False),
                       ("i3", "unknown", False), ("i4", "invalid", False),
                       ("i5", "not_discharged", False)]
        assert _counts(rt) == (2, 5, 1, 2)
        # the same upload again (the phone lost the answer): nothing changes
        again = _post(c, body).json()
        assert [(x["outcome"], x["replayed"]) for x in again["results"]] == [
            (x["outcome"], True) for x in first["results"]]
        assert _counts(rt) == (2, 5, 1, 2)
        receipt = c.get(first["escpos"])
        assert receipt.status_code == 200
        page = c.get(first["receipt"])
        assert page.status_code == 200 and "李春华" in page.text and "赵国庆" in page.text
        assert "份数：2" in page.text and "病区交接人签名" in page.text
    with web_client(rt) as c:
        login(c, "CLK2", PASSWORD)
        res = _post(c, {"handover_id": "h2-bbbbbbbbbbbb", "ward": "普外二病区",
                        "started_at": T0.isoformat(),
                        "items": [_item("j1-bbbbbbbbbbbb", r1.barcode, 9),
                                  _item("j2-bbbbbbbbbbbb", r2.barcode, 10)]})
        out = {x["client_id"][:2]: x for x in res.json()["results"]}
        assert out["j1"]["outcome"] == "taken" and "CLK1" in out["j1"]["message"]
        assert out["j2"]["outcome"] == "recovered"
        # someone else's handover id is not taken over
        res = _post(c, body)
        assert res.status_code == 400 and "另一位回收人员" in res.json()["error"]
    with rt.sessions() as s:
        ho = s.scalar(select(Handover).where(Handover.client_id == "h1-aaaaaaaaaaaa"))
        when = ho.uploaded_at.astimezone(CN)
        by = {x.admission_id: x for x in s.scalars(select(Recovery))}
    assert by[r0.id].recovered_at == T0 + dt.timedelta(minutes=1)  # the time of the scan
    assert by[r0.id].ward == "心内一病区" and by[r0.id].source == "ward"

    # python-escpos's own output for this receipt
    p = Dummy(profile="default")
    p.hw("INIT")
    p.set(align="center", bold=True, double_height=True, double_width=False)
    p.textln("病案回收交接单")
    p.set(align="center", bold=False, normal_textsize=True)
    p.textln(rt.config.core.hospital_name)
    p.set(align="left", normal_textsize=True)
    p.textln("-" * 32)
    for t in ["病区：心内一病区", f"时间：{when:%Y-%m-%d %H:%M}", "回收人：郑回收（CLK1）",
              "交接单号：h1-aaaaaaaaa", "份数：2"]:
        p.textln(t)
    p.textln("-" * 32)
    p.textln("病案号   姓名   出院日期")
    p.textln("00700001 李春华 02-13")
    p.textln("00700002 赵国庆 09-30")
    p.textln("-" * 32)
    p.ln(1)
    p.textln("病区交接人签名：")
    p.ln(2)
    p.textln("_" * 32)
    p.ln(3)
    p.cut(mode="PART", feed=True)
    assert receipt.content == p.output
    # Chinese as GB18030, the receipt starts with ESC @ and ends with a partial cut
    assert "李春华".encode("gb18030") in receipt.content
    assert receipt.content.startswith(b"\x1b@") and b"\x1dV" in receipt.content[-8:]

"""What recovery adds beyond its own pages: the home page figures (the record room's due and
overdue records, a physician's own records still on the ward) and the record page's panel
(where the paper record is in recovery), each behind the permissions of recovery's pages."""

from __future__ import annotations

import datetime as dt

from bingan_recovery import service
from homeutil import home_links, home_panels
from ward_world import CN, PASSWORD, RECORDS
from webutil import login, web_client

WAITING, LATE_BACK = RECORDS[3].admission_no, RECORDS[0].admission_no


def test_due_counts_agree_with_the_due_list(world):
    rt = world.rt
    for today in (dt.date(2026, 12, 1), dt.date(2026, 12, 7), dt.date(2027, 1, 4)):
        with rt.sessions() as s:
            rows = service.due_rows(s, rt, today)
            assert service.due_counts(s, rt, today) == (
                len(rows), sum(r.overdue_days > 0 for r in rows)), today
            assert service.due_counts(s, rt, today, attending="PHY1") == (
                len(rows), sum(r.overdue_days > 0 for r in rows))
            assert service.due_counts(s, rt, today, attending="REC1") == (0, 0)


def test_home_panels_by_role(world):
    rt = world.rt
    with rt.sessions() as s, s.begin():
        service.recover(s, rt, world.rec(LATE_BACK).barcode, staff_no="CLK1", source="room")
    with rt.sessions() as s:
        due, late = service.due_counts(s, rt)
    assert due == 3  # four discharged, one back
    with web_client(rt) as c:
        assert login(c, "REC1", PASSWORD).status_code in (302, 303)
        r = c.get("/")
        room = home_panels(r.text)["recovery-due"]
        assert room["待回收病案"] == str(due) and room["超期未回收"] == str(late)
        assert room["补单待采集"] == "0"
        assert "recovery-mine" not in home_panels(r.text)  # not a physician
        for href in home_links(r.text)["recovery-due"]:
            assert c.get(href).status_code == 200, href
        c.cookies.clear()
        assert login(c, "PHY1", PASSWORD).status_code in (302, 303)
        r = c.get("/")
        panels = home_panels(r.text)
        assert "recovery-due" not in panels  # no recovery.view: not the ward lists
        assert panels["recovery-mine"] == {"病案室尚未收到": str(due), "已超期": str(late)}
        assert not home_links(r.text).get("recovery-mine")  # counts only, no record named
        for rec in RECORDS:
            assert rec.name not in r.text and rec.admission_no not in r.text


def test_record_page_panel(world):
    rt = world.rt
    got = dt.datetime(2026, 2, 27, 9, tzinfo=CN)  # after the Spring Festival: late
    with rt.sessions() as s, s.begin():
        service.recover(s, rt, world.rec(LATE_BACK).barcode, staff_no="CLK1", source="room",
                        at=got)
        waiting = service.record_status(s, rt, world.rec(WAITING).id)
        assert service.record_status(s, rt, world.rec(RECORDS[4].admission_no).id) is None
    with web_client(rt) as c:
        assert login(c, "REC1", PASSWORD).status_code in (302, 303)
        r = c.get(f"/records/{LATE_BACK}")
        assert r.status_code == 200 and 'id="rc-panel"' in r.text
        assert "逾期回收" in r.text and "郑回收（CLK1）" in r.text and "病案室扫码" in r.text
        r = c.get(f"/records/{WAITING}")
        assert 'id="rc-panel"' in r.text
        want = (f"超期 {waiting['overdue']} 个工作日未回收" if waiting["overdue"]
                else "病区尚未交回")
        assert want in r.text and str(waiting["due"]) in r.text
        # still in hospital: nothing to recover yet, no panel
        r = c.get(f"/records/{RECORDS[4].admission_no}")
        assert r.status_code == 200 and 'id="rc-panel"' not in r.text
        c.cookies.clear()
        # the attending may read his record (reading: signer) but not recovery's lists
        assert login(c, "PHY1", PASSWORD).status_code in (302, 303)
        r = c.get(f"/records/{WAITING}")
        assert r.status_code == 200 and 'id="rc-panel"' not in r.text

"""The paper-record state machine: transitions allowed and refused per role (the rule named,
nothing written), automatic moves from another plugin's events (the recovery plugin's scan in
the record room), bulk moves of a scanned run, timelines, counts, overdue in working days by
the recovery plugin's calendar (and by weekdays without it), the pages and their access."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from bingan.core.models import AuditEvent
from bingan.core.plugins import installed_plugins
from bingan.hooks.types import PaperRecordEvent
from bingan.core.records import to_ref

from bingan_tracking import service
from bingan_tracking.models import Move, PaperState
from bingan_tracking.service import TrackingError
from bingan_tracking.settings import AutoDef, StateDef, TrackingSettings, TransitionDef
from support import build_test_runtime
from track_world import CN, PASSWORD, RECORDS
from webutil import csrf_token, login, web_client

A, B, C, D, E = (r[0] for r in RECORDS)


def _moves(rt) -> int:
    with rt.sessions() as s:
        return s.scalar(select(func.count()).select_from(Move))


def _state(rt, world, no) -> str:
    with rt.sessions() as s:
        return service.state_of(s, service.machine(rt), world.ids[no])[0]


def _move(world, no, to, who, **kw):
    rt = world.rt
    staff = world.staff(who)
    with rt.sessions() as s, s.begin():
        return service.move(s, rt, world.admission(s, no), to, staff=staff, **kw)


def _walk(world, no, states, who="REC1"):
    for st in states:
        _move(world, no, st, who)


def test_transitions_allowed_and_refused_per_role(world):
    rt = world.rt
    # a record nobody moved is in the initial state
    assert _state(rt, world, A) == "待回收"
    mv = _move(world, A, "已回收", "CLK1", location="病案室签收台", note="病区送来")
    assert (mv.from_state, mv.to_state, mv.staff_no, mv.location, mv.note) == (
        "待回收", "已回收", "CLK1", "病案室签收台", "病区送来")
    _walk(world, A, ["待编码"], "CLK1")
    before = _moves(rt)
    # coding is the record-room manager's: the clerk is refused with the rule named
    with pytest.raises(TrackingError) as exc:
        _move(world, A, "已编码", "CLK1")
    assert "待编码 → 已编码（编码完成）" in str(exc.value) and "病案室管理员" in str(exc.value)
    # a physician may move nothing
    with pytest.raises(TrackingError, match="无权执行此流转"):
        _move(world, A, "已编码", "PHY1")
    # a transition the rules do not have is refused whoever asks, naming where it may go
    with pytest.raises(TrackingError) as exc:
        _move(world, A, "已上架", "REC1")
    assert "流转规则不允许“待编码 → 已上架”" in str(exc.value) and "已编码" in str(exc.value)
    with pytest.raises(TrackingError, match="没有“丢失”这个状态"):
        _move(world, A, "丢失", "REC1")
    with pytest.raises(TrackingError, match="已处于“待编码”"):
        _move(world, A, "待编码", "REC1")
    assert _moves(rt) == before and _state(rt, world, A) == "待编码"  # nothing written
    _walk(world, A, ["已编码", "待翻拍", "已翻拍"], "REC1")
    # QC passes the pages; the clerk may not
    with pytest.raises(TrackingError, match="质控员"):
        _move(world, A, "已质检", "CLK1")
    _move(world, A, "已质检", "QC1")
    assert _state(rt, world, A) == "已质检"
    with rt.sessions() as s:
        tl = service.timeline(s, world.ids[A])
        audited = s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "tracking.move", AuditEvent.admission_no == A))
    assert [t.to_state for t in tl] == ["已回收", "待编码", "已编码", "待翻拍", "已翻拍", "已质检"]
    assert [t.staff_name for t in tl][:2] == ["郑文员", "郑文员"] and tl[-1].staff_name == "冯质控"
    assert audited == 6


def test_hook_paper_record_event(world):
    """Core's hook: the settings' automatic rule moves the record inside the caller's
    transaction; an event from a state no rule moves from leaves it; a rollback undoes both."""
    rt = world.rt
    _walk(world, B, ["已回收", "待编码", "已编码", "待翻拍", "已翻拍"])
    _move(world, B, "已质检", "QC1")
    ev = PaperRecordEvent("boxed", staff_no="CLK1", client_ip="10.1.2.3",
                          computer_name="MRD-PC2", location="1号库房 A-01-1 箱 X0001")
    with rt.sessions() as s, s.begin():
        rt.pm.hook.paper_record_event(session=s, admission=to_ref(world.admission(s, B)),
                                      event=ev, rt=rt)
    assert _state(rt, world, B) == "已装箱"
    with rt.sessions() as s:
        last = service.timeline(s, world.ids[B])[-1]
    assert (last.source, last.rule, last.staff_name, last.client_ip, last.computer_name,
            last.location) == ("event:boxed", "自动：装箱", "郑文员", "10.1.2.3", "MRD-PC2",
                               "1号库房 A-01-1 箱 X0001")
    # record C is still waiting for recovery: a box event does not move it
    n = _moves(rt)
    with rt.sessions() as s, s.begin():
        rt.pm.hook.paper_record_event(session=s, admission=to_ref(world.admission(s, C)),
                                      event=ev, rt=rt)
    assert _moves(rt) == n and _state(rt, world, C) == "待回收"
    # the caller's rollback takes the move with it
    with rt.sessions() as s:
        with s.begin():
            rt.pm.hook.paper_record_event(
                session=s, admission=to_ref(world.admission(s, C)),
                event=PaperRecordEvent("recovered", staff_no="CLK1"), rt=rt)
            assert s.get(PaperState, world.ids[C]).state == "已回收"
            s.rollback()
    assert _state(rt, world, C) == "待回收" and _moves(rt) == n
    with rt.sessions() as s, s.begin(), pytest.raises(TrackingError, match="未知的病案事件"):
        service.on_event(s, rt, to_ref(world.admission(s, C)), PaperRecordEvent("lost"))


def test_recovery_scan_moves_the_record(world):
    """Another plugin's event: the record room scans a record back (recovery plugin's page);
    tracking moves it 待回收 -> 已回收 with the scanner's staff number and workstation."""
    rt = world.rt
    with web_client(rt, peer="10.9.8.7") as c:
        assert login(c, "CLK1", PASSWORD).status_code in (302, 303)
        r = c.post("/recovery/room/scan", data={"barcode": world.barcodes[C]},
                   headers={"x-csrftoken": csrf_token(c)})
        assert r.status_code == 200, r.text
    assert _state(rt, world, C) == "已回收"
    with rt.sessions() as s:
        (t,) = service.timeline(s, world.ids[C])
    assert (t.from_state, t.to_state, t.source, t.staff_no, t.client_ip) == (
        "待回收", "已回收", "event:recovered", "CLK1", "10.9.8.7")


def test_bulk_move_of_a_scanned_run(world):
    rt = world.rt
    for no in (A, B):
        _walk(world, no, ["已回收"])
    bad_check = world.barcodes[C][:-1] + ("0" if world.barcodes[C][-1] != "0" else "1")
    text = "\n".join([world.barcodes[A], world.barcodes[B].lower(), world.barcodes[A], bad_check,
                      "BA99999999-019", world.barcodes[D]])
    codes = service.parse_codes(text, 100)
    with rt.sessions() as s, s.begin():
        out = service.bulk_move(s, rt, codes, "待编码", staff=world.staff("CLK1"),
                                location="编码室", note="第一批")
    got = [(o.outcome, o.from_state) for o in out]
    assert got[:3] == [("moved", "已回收"), ("moved", "已回收"), ("repeat", "")]
    assert got[3][0] == "invalid" and got[4][0] in ("unknown", "invalid")
    assert got[5] == ("refused", "待回收") and "不允许" in out[5].message
    assert _state(rt, world, A) == _state(rt, world, B) == "待编码"
    assert _state(rt, world, D) == "待回收"
    with rt.sessions() as s:
        t = service.timeline(s, world.ids[B])[-1]
    assert (t.source, t.location, t.note) == ("bulk", "编码室", "第一批")
    # an oversized run or an unknown target moves nothing
    n = _moves(rt)
    with pytest.raises(TrackingError, match="一次最多 2 个条码"):
        service.parse_codes(text, 2)
    with rt.sessions() as s, s.begin(), pytest.raises(TrackingError, match="没有“x”这个状态"):
        service.bulk_move(s, rt, codes, "x", staff=world.staff("REC1"))
    assert _moves(rt) == n
    # through the page: the clerk scans two records on to 待翻拍? not allowed from 待编码
    with web_client(rt) as c:
        assert login(c, "REC1", PASSWORD).status_code in (302, 303)
        r = c.post("/tracking/move", data={"to": "已编码", "location": "编码室",
                                           "codes": f"{world.barcodes[A]}\n{world.barcodes[D]}"},
                   headers={"x-csrftoken": csrf_token(c)})
        assert r.status_code == 200, r.text
        assert "已流转 1" in r.text and "不允许 1" in r.text
        r = c.post("/tracking/move", data={"to": "已编码", "codes": ""},
                   headers={"x-csrftoken": csrf_token(c)})
        assert r.status_code == 400 and "请扫描或输入病案条码" in r.text
    assert _state(rt, world, A) == "已编码"


def _since(rt, world, no, when):
    with rt.sessions() as s, s.begin():
        s.get(PaperState, world.ids[no]).since = when


def _overdue(rt, state, today):
    with rt.sessions() as s:
        return {c.state: (c.count, c.overdue) for c in service.counts(s, rt, today)}[state]


def test_counts_and_overdue_in_working_days(world, db_url, tmp_path):
    """待编码 allows 3 working days. Entered on 2026-09-30: by the recovery plugin's calendar
    (National Day holidays) it is not overdue on 2026-10-09; by weekdays (recovery off) it
    is."""
    rt = world.rt
    _walk(world, A, ["已回收", "待编码"])
    _since(rt, world, A, dt.datetime(2026, 9, 30, 10, tzinfo=CN))
    today = dt.date(2026, 10, 9)
    assert _overdue(rt, "待编码", today) == (1, 0)
    assert _overdue(rt, "待编码", dt.date(2026, 10, 13)) == (1, 1)
    # initial state: the discharged records nobody moved, since their discharge
    count, late = _overdue(rt, "待回收", dt.date(2026, 12, 7))
    assert (count, late) == (3, 3)  # B, C, D; E is still in hospital
    with rt.sessions() as s:
        rows, total = service.in_state(s, rt, "待回收", overdue_only=True,
                                       today=dt.date(2026, 12, 7))
    assert total == 3 and [r.admission_no for r in rows] == [B, C, D]
    no_recovery = [p for p in sorted(installed_plugins()) if p not in ("recovery", "warehouse")]
    weekdays = build_test_runtime(tmp_path / "wd", db_url, enabled=no_recovery)
    try:
        with weekdays.sessions() as s:
            assert isinstance(service.calendar(s, weekdays), service.WeekdayCalendar)
        assert _overdue(weekdays, "待编码", today) == (1, 1)
    finally:
        weekdays.close()


def test_pages_and_access(world):
    rt = world.rt
    _walk(world, A, ["已回收", "待编码"])
    with web_client(rt) as c:
        assert login(c, "REC1", PASSWORD).status_code in (302, 303)
        r = c.get("/tracking")
        assert r.status_code == 200 and 'data-state="待编码"' in r.text and "流转规则" in r.text
        r = c.get("/tracking/state", params={"name": "待回收"})
        assert r.status_code == 200 and "冯流转" in r.text and "钱示踪" not in r.text
        r = c.get("/tracking/record", params={"code": A})
        assert r.status_code == 200 and "钱示踪" in r.text and 'data-state="待编码"' in r.text
        r = c.post(f"/tracking/record/{world.ids[A]}/move",
                   data={"to": "已编码", "location": "编码室", "note": "编码员 2 号"},
                   headers={"x-csrftoken": csrf_token(c)}, follow_redirects=False)
        assert r.status_code == 303
        r = c.post(f"/tracking/record/{world.ids[A]}/move", data={"to": "已上架"},
                   headers={"x-csrftoken": csrf_token(c)})
        assert r.status_code == 400 and "流转规则不允许" in r.text
        assert c.get("/api/tracking/counts").json()["states"][0]["state"] == "待回收"
    assert _state(rt, world, A) == "已编码"
    # the clerk may track records but not read them: names stay hidden, the timeline refused
    with web_client(rt) as c:
        assert login(c, "CLK1", PASSWORD).status_code in (302, 303)
        r = c.get("/tracking/state", params={"name": "待回收"})
        assert r.status_code == 200 and "冯流转" not in r.text and "无权查阅" in r.text
        r = c.get("/tracking/record", params={"code": world.barcodes[A]})
        assert r.status_code == 403 and "钱示踪" not in r.text
    with web_client(rt) as c:
        assert login(c, "PHY1", PASSWORD).status_code in (302, 303)
        assert c.get("/tracking").status_code == 403


def test_settings_are_checked():
    ok = TrackingSettings(states=[StateDef(name="甲"), StateDef(name="乙")], initial="甲",
                          transitions=[TransitionDef(from_=["甲"], to="乙", roles=["records"])],
                          auto=[AutoDef(event="recovered", from_=["甲"], to="乙")])
    assert [s.name for s in ok.states] == ["甲", "乙"]
    with pytest.raises(ValueError, match="unknown state '丙'"):
        TrackingSettings(states=[StateDef(name="甲")], initial="甲",
                         transitions=[TransitionDef(from_=["甲"], to="丙", roles=["x"])], auto=[])
    with pytest.raises(ValueError, match="unknown event"):
        TrackingSettings(states=[StateDef(name="甲"), StateDef(name="乙")], initial="甲",
                         transitions=[], auto=[AutoDef(event="lost", from_=["甲"], to="乙")])
    with pytest.raises(ValueError, match="initial state"):
        TrackingSettings(states=[StateDef(name="甲")], initial="乙", transitions=[], auto=[])


def test_settings_page_shows_the_machine_and_states_left_behind(world):
    """The administrator's read-only view of the configured states (with their records and
    history), rules and automatic moves; a state removed from the configuration while records
    still hold it is listed with them."""
    from webutil import login_admin, make_admin

    rt = world.rt
    _walk(world, A, ["已回收", "待编码"])
    make_admin(rt, "A001")
    with web_client(rt) as c:
        login_admin(c, "A001")
        r = c.get("/tracking/settings")
        assert r.status_code == 200 and 'id="tk-orphans"' not in r.text
        rows = r.text.split('id="tk-states"')[1].split("</table>")[0]
        assert rows.index("待回收") < rows.index("已回收") < rows.index("待编码")
        assert "初始状态" in rows and "2 个工作日" in rows and 'id="tk-auto"' in r.text
        st = rt.settings(TrackingSettings)
        st.states = [x for x in st.states if x.name != "待编码"]  # as a new plugins.toml would
        r = c.get("/tracking/settings")
        orphans = r.text.split('id="tk-orphans"')[1].split("</table>")[0]
        assert "<td>待编码</td><td>1</td><td>1</td>" in orphans  # A is still there
    with web_client(rt) as c:  # the record room reads the rules on the dashboard instead
        assert login(c, "REC1", PASSWORD).status_code in (302, 303)
        assert c.get("/tracking/settings").status_code == 403

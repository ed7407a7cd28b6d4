"""Working days across the Spring Festival and National Day of 2026 with their make-up
workdays (调休), a hospital closure and a hospital make-up day, a year without make-up data
flagged until the hospital checked it, and capture's batch plan on the same calendar."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from bingan.core.models import AuditEvent

from bingan_capture import batches as bt
from bingan_capture.models import CapturePlan
from bingan_recovery import calendar as wcal
from bingan_recovery import service
from bingan_recovery.service import RecoveryError
from ward_world import RECORDS

D = dt.date


def test_spring_festival_and_national_day_with_make_up_days():
    cal = wcal.WorkCalendar()
    # 2026 Spring Festival: 15-23 February off, Saturday 14 and Saturday 28 February worked
    assert cal.is_workday(D(2026, 2, 14)) and D(2026, 2, 14).weekday() == 5
    assert not any(cal.is_workday(D(2026, 2, d)) for d in range(15, 24))
    assert cal.is_workday(D(2026, 2, 28))
    # discharged Friday 13 February: day 1 is the make-up Saturday, day 2 is Tuesday 24th
    assert cal.add_working_days(D(2026, 2, 13), 1) == D(2026, 2, 14)
    assert cal.add_working_days(D(2026, 2, 13), 2) == D(2026, 2, 24)
    # National Day: 1-7 October off; Sunday 20 September and Saturday 10 October worked
    assert cal.add_working_days(D(2026, 9, 30), 2) == D(2026, 10, 9)
    assert cal.add_working_days(D(2026, 10, 8), 2) == D(2026, 10, 10)  # a Saturday
    assert cal.add_working_days(D(2026, 9, 18), 1) == D(2026, 9, 20)   # a Sunday
    assert cal.working_days_between(D(2026, 9, 30), D(2026, 10, 11)) == 3
    assert cal.add_working_days(D(2026, 3, 2), 0) == D(2026, 3, 2)
    with pytest.raises(wcal.CalendarError):
        cal.add_working_days(D(2026, 3, 2), -1)
    what = cal.describe(D(2026, 2, 14))
    assert what[0] and "调休上班" in what[1] and what[2] == "chinese-calendar"


def test_hospital_closure_and_make_up_day_override_national_data():
    cal = wcal.WorkCalendar(hospital={D(2026, 10, 9): ("closure", "停电检修"),
                                      D(2026, 10, 11): ("workday", "院内补班")})
    # Friday 9 October closed: the record discharged 30 September is due on Saturday 10th
    assert not cal.is_workday(D(2026, 10, 9))
    assert cal.add_working_days(D(2026, 9, 30), 2) == D(2026, 10, 10)
    # and the hospital's own Sunday counts
    assert cal.add_working_days(D(2026, 9, 30), 3) == D(2026, 10, 11)
    assert cal.describe(D(2026, 10, 9)) == (False, "本院停诊：停电检修", "hospital")


def test_year_without_make_up_data_is_flagged_not_guessed():
    cal = wcal.WorkCalendar()
    last = max(wcal.chinese_calendar_years())
    later = last + 1
    assert cal.unknown_years(last, later) == [later]
    assert not cal.year_known(later)
    # the statutory days of that year are still holidays (no invented make-up days)
    assert not cal.is_workday(D(later, 10, 1)) and not cal.is_workday(D(later, 1, 1))
    days = {d: (w, what, src) for d, w, what, src in wcal.year_days(cal, later)}
    assert days[D(later, 10, 1)][2] == "holidays"
    assert not any(w for w, _, _ in days.values())  # nobody made up a make-up workday
    checked = wcal.WorkCalendar(checked=frozenset({later}))
    assert checked.unknown_years(last, later) == []


def test_hospital_table_in_the_database(world):
    rt = world.rt
    with rt.sessions() as s, s.begin():
        service.set_day(s, rt, D(2026, 10, 9), "closure", "停电检修", by="REC1")
        with pytest.raises(RecoveryError):
            service.set_day(s, rt, D(2026, 10, 10), "holiday", "", by="REC1")
    with rt.sessions() as s:
        cal = wcal.load(s)
        assert cal.add_working_days(D(2026, 9, 30), 2) == D(2026, 10, 10)
        rows = {r.barcode: r for r in service.due_rows(s, rt, D(2026, 12, 7), cal=cal)}
    nd = world.rec(RECORDS[1].admission_no)
    assert rows[nd.barcode].due_date == D(2026, 10, 10)
    assert rows[nd.barcode].overdue_days > 0
    with rt.sessions() as s, s.begin():
        service.remove_day(s, rt, D(2026, 10, 9), by="REC1")
        with pytest.raises(RecoveryError):
            service.remove_day(s, rt, D(2026, 10, 9), by="REC1")
        service.check_year(s, rt, 2027, by="REC1")
    with rt.sessions() as s:
        assert wcal.load(s).unknown_years(2026, 2027) == []
        acts = [e.action for e in s.scalars(select(AuditEvent).order_by(AuditEvent.seq))]
    assert {"recovery.calendar_set", "recovery.calendar_remove",
            "recovery.calendar_check"} <= set(acts)


def test_hook_working_calendar(world):
    """capture's batch plan spreads pages over the hospital's working days."""
    rt = world.rt
    a = world.rec(RECORDS[0].admission_no)
    with rt.sessions() as s, s.begin():
        service.set_day(s, rt, D(2026, 2, 26), "closure", "院内停诊", by="REC1")
    with rt.sessions() as s:
        cal = rt.pm.hook.working_calendar(session=s, rt=rt)
        assert cal is not None and not cal.is_workday(D(2026, 2, 26))
    with rt.sessions() as s, s.begin():
        batch = bt.create_batch(s, rt, "春节批次", D(2026, 2, 13), 10,
                                bt.parse_text(f"{a.admission_no},50"), by="REC1")
        plan = s.scalars(select(CapturePlan).where(CapturePlan.batch_id == batch.id)
                         .order_by(CapturePlan.day)).all()
    # Friday 13th, the make-up Saturday 14th, then after the festival Tuesday 24th, Wed 25th;
    # Thursday 26th (the hospital's closure) skipped
    assert [p.day for p in plan] == [D(2026, 2, 13), D(2026, 2, 14), D(2026, 2, 24),
                                     D(2026, 2, 25), D(2026, 2, 27)]
    assert [p.planned_pages for p in plan] == [10] * 5

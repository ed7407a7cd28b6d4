"""Working days: the national holiday data plus the hospital's own holiday table.

A day is a working day when:

1. the hospital's table (节假日设置) says so: a closure is never a working day, a make-up
   workday (调休) always is;
2. otherwise ``chinese-calendar`` knows the year (statutory holidays *and* make-up workdays as
   the State Council published them): its answer;
3. otherwise (a year the package has no data for) Monday-Friday except the statutory holidays
   ``holidays`` computes for China (fixed and lunar dates, without guessed "observed" days).
   Such a year has no make-up-day data: ``unknown_years`` names it until the hospital enters
   the year's 调休 in its table and marks the year checked, and the holiday page flags it.

Dates are the hospital's local calendar dates. The discharge day itself is never counted: a
record discharged on day D is due on the N-th working day after D.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field

import chinese_calendar
import holidays as holidays_lib
from chinese_calendar import constants as cc_constants
from sqlalchemy import select
from sqlalchemy.orm import Session

from bingan_recovery.models import CheckedYear, HospitalDay

# names of the statutory holidays as the pages show them
HOLIDAY_NAMES = {
    "New Year's Day": "元旦", "Spring Festival": "春节", "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节", "Dragon Boat Festival": "端午节", "National Day": "国庆节",
    "Mid-autumn Festival": "中秋节", "Anti-Fascist 70th Day": "抗战胜利纪念日",
}
HOLIDAYS_LIB_NAMES = {
    "New Year's Day": "元旦", "Chinese New Year's Eve": "除夕",
    "Chinese New Year (Spring Festival)": "春节", "Tomb-Sweeping Day": "清明节",
    "Labor Day": "劳动节", "Dragon Boat Festival": "端午节", "Mid-Autumn Festival": "中秋节",
    "National Day": "国庆节",
}
MAX_SPAN_DAYS = 3700  # no arithmetic walks further than about ten years


class CalendarError(ValueError):
    """A working-day question that cannot be answered (n out of range, span too long)."""


@functools.lru_cache(maxsize=1)
def chinese_calendar_years() -> frozenset[int]:
    """The years ``chinese-calendar`` has holidays *and* make-up workdays for."""
    return frozenset(d.year for d in cc_constants.holidays)


@functools.lru_cache(maxsize=64)
def _statutory(year: int) -> dict[dt.date, str]:
    """Statutory holidays of a year ``chinese-calendar`` does not know (no observed guesses)."""
    cn = holidays_lib.country_holidays("CN", years=year, observed=False)
    return {d: HOLIDAYS_LIB_NAMES.get(n, n) for d, n in cn.items() if d.year == year}


def national_day(day: dt.date) -> tuple[bool, str, str]:
    """(is a working day, name of the holiday or make-up day or "", source) by national data."""
    if day.year in chinese_calendar_years():
        on_holiday, name = chinese_calendar.get_holiday_detail(day)
        label = HOLIDAY_NAMES.get(name or "", name or "")
        if day in cc_constants.workdays:
            return True, f"{label}调休上班" if label else "调休上班", "chinese-calendar"
        return (not on_holiday), label, "chinese-calendar"
    name = _statutory(day.year).get(day)
    if name:
        return False, name, "holidays"
    return day.weekday() < 5, "", "weekdays"


@dataclass
class WorkCalendar:
    """The hospital's working-day calendar (answers the ``working_calendar`` hook)."""

    hospital: dict[dt.date, tuple[str, str]] = field(default_factory=dict)  # day -> (kind, note)
    checked: frozenset[int] = frozenset()

    def is_workday(self, day: dt.date) -> bool:
        own = self.hospital.get(day)
        if own is not None:
            return own[0] == "workday"
        return national_day(day)[0]

    def describe(self, day: dt.date) -> tuple[bool, str, str]:
        """(working day, what the day is, where that comes from) for the pages."""
        own = self.hospital.get(day)
        if own is not None:
            kind, note = own
            what = "本院调休上班" if kind == "workday" else "本院停诊"
            what += f"：{note}" if note else ""
            return kind == "workday", what, "hospital"
        return national_day(day)

    def add_working_days(self, start: dt.date, n: int) -> dt.date:
        """The n-th working day after ``start`` (``start`` itself not counted); n >= 0."""
        if not 0 <= n <= 366:
            raise CalendarError("工作日数应在 0 到 366 之间")
        day, left = start, n
        while left:
            day += dt.timedelta(days=1)
            if (day - start).days > MAX_SPAN_DAYS:
                raise CalendarError("日期跨度过长")
            if self.is_workday(day):
                left -= 1
        return day

    def working_days_between(self, start: dt.date, end: dt.date) -> int:
        """Working days after ``start`` up to and including ``end`` (0 if end <= start)."""
        if (end - start).days > MAX_SPAN_DAYS:
            raise CalendarError("日期跨度过长")
        n, day = 0, start
        while day < end:
            day += dt.timedelta(days=1)
            n += self.is_workday(day)
        return n

    def year_known(self, year: int) -> bool:
        """True when make-up workdays of ``year`` are known (national data or checked here)."""
        return year in chinese_calendar_years() or year in self.checked

    def unknown_years(self, first: int, last: int) -> list[int]:
        """Years in [first, last] whose make-up workdays nobody entered: flagged on the page."""
        return [y for y in range(first, last + 1) if not self.year_known(y)]


def load(session: Session) -> WorkCalendar:
    """The calendar with the hospital's table as stored (read in the caller's transaction)."""
    own = {d.day: (d.kind, d.note) for d in session.scalars(select(HospitalDay))}
    checked = frozenset(session.scalars(select(CheckedYear.year)))
    return WorkCalendar(hospital=own, checked=checked)


def year_days(cal: WorkCalendar, year: int) -> list[tuple[dt.date, bool, str, str]]:
    """Every day of ``year`` that is not an ordinary day (holiday, make-up day, closure,
    weekday off): (day, working, what, source), for the holiday page."""
    out = []
    day = dt.date(year, 1, 1)
    while day.year == year:
        working, what, source = cal.describe(day)
        if what or source == "hospital":
            out.append((day, working, what, source))
        day += dt.timedelta(days=1)
    return out

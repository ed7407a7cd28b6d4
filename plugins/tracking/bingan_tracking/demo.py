"""Demo material: the demo hospital's discharged records spread over the flow, oldest
furthest along (moved through every state in between, by the record-room staff, at times
after their discharge), so the dashboard, the overdue counts and the timelines are populated.
Idempotent: does nothing once any record was moved."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from bingan.core.models import Admission, Staff, utcnow

from bingan_tracking.models import PaperState
from bingan_tracking.service import _write, machine

CHAIN = ["待回收", "已回收", "待编码", "已编码", "待翻拍", "已翻拍", "已质检"]
# share of the discharged records (oldest first) that reached each state
PLAN = [("已质检", 0.55), ("已翻拍", 0.08), ("待翻拍", 0.07), ("已编码", 0.06), ("待编码", 0.08),
        ("已回收", 0.08)]
MOVERS = {"已回收": "R0003", "待编码": "R0001", "已编码": "R0002", "待翻拍": "R0002",
          "已翻拍": "R0003", "已质检": "Q0001"}
PLACES = {"已回收": "病案室签收台", "待编码": "编码室", "已编码": "编码室", "待翻拍": "翻拍室",
          "已翻拍": "翻拍室", "已质检": "质控室"}


def load_demo(rt, admissions) -> int:
    m = machine(rt)
    if not set(CHAIN) <= set(m.states):
        return 0  # the hospital's own states: no demo flow to guess
    now = utcnow()
    with rt.sessions() as s, s.begin():
        if s.scalar(select(func.count()).select_from(PaperState)):
            return 0
        staff = set(s.scalars(select(Staff.staff_no)))
        adms = list(s.scalars(select(Admission).options(joinedload(Admission.patient))
                              .where(Admission.discharged_at.is_not(None),
                                     Admission.cancelled_at.is_(None))
                              .order_by(Admission.discharged_at, Admission.id)).unique())
        n, i, moved = len(adms), 0, 0
        for target, share in PLAN:
            take = round(n * share)
            for adm in adms[i:i + take]:
                when = adm.discharged_at
                depth = CHAIN.index(target)
                # the newest records moved recently: steps squeezed into the time since discharge
                span = max((now - when).total_seconds() - 3600, 3600 * depth)
                step = min(dt.timedelta(days=2, hours=3), dt.timedelta(seconds=span / depth))
                src = CHAIN[0]
                for k in range(1, depth + 1):
                    dst = CHAIN[k]
                    who = MOVERS[dst] if MOVERS[dst] in staff else None
                    row = s.get(PaperState, adm.id)
                    _write(s, rt, adm, src, dst, row, staff_no=who, actor=None,
                           location=PLACES[dst], note="", source="demo",
                           rule=f"{src}→{dst}", at=when + step * k)
                    src = dst
                moved += 1
            i += take
        return moved

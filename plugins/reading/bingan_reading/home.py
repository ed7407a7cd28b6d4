"""What the reading plugin puts on a person's home page (``home_panels``): their own
applications and grants, the applications waiting for their decision, and the record room's
paper requests. Counts and links only (the pages behind the links check access)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from bingan.core.models import Grant, utcnow
from bingan.hooks.types import HomeItem, HomePanel
from bingan_reading.applications import APPLY_PERMISSION
from bingan_reading.models import PaperRequest, ReadingApplication
from bingan_reading.paper import handled_elsewhere

EXPIRING = dt.timedelta(days=3)  # a grant ending this soon is pointed out
MAX_PENDING_SCAN = 5000  # pending applications looked through for this approver's


def _count(session, q) -> int:
    return int(session.scalar(select(func.count()).select_from(q.subquery())) or 0)


def _mine_panel(staff, mine: int, grants: int, ending: int, waiting: int) -> HomePanel:
    items = []
    if waiting or "reading.approve" in staff.permissions:
        items.append(HomeItem("待我审批的申请", waiting, "/reading/approvals",
                              "warn" if waiting else ""))
    # 三员分立: the duty roles have no reading.apply, so no applications or grants of their own
    own = APPLY_PERMISSION in staff.permissions
    if own:
        items += [
            HomeItem("我的申请待审批", mine, "/reading/applications"),
            HomeItem("有效的查阅授权", grants, "/reading/grants"),
            HomeItem("3 天内到期的授权", ending, "/reading/grants", "warn" if ending else ""),
        ]
    return HomePanel("reading.mine", "病案查阅", tuple(items), order=40,
                     href="/reading/applications" if own else "/reading/approvals")


def panels(staff, session, rt) -> list[HomePanel]:
    now = utcnow()
    mine = _count(session, select(ReadingApplication.id).where(
        ReadingApplication.applicant_id == staff.id, ReadingApplication.status == "pending"))
    live = select(Grant.id).where(Grant.staff_id == staff.id, Grant.revoked_at.is_(None),
                                  Grant.closed_at.is_(None), Grant.deadline > now,
                                  Grant.starts_at <= now)
    grants = _count(session, live)
    ending = _count(session, live.where(Grant.deadline <= now + EXPIRING))
    # as apps.may_decide: named among the approvers and not the applicant
    waiting = sum(1 for approvers, applicant in session.execute(
        select(ReadingApplication.approvers, ReadingApplication.applicant_id)
        .where(ReadingApplication.status == "pending")
        .order_by(ReadingApplication.id).limit(MAX_PENDING_SCAN))
        if staff.staff_no in (approvers or []) and applicant != staff.id)
    out: list[HomePanel] = []
    if (APPLY_PERMISSION in staff.permissions or waiting
            or "reading.approve" in staff.permissions):
        out.append(_mine_panel(staff, mine, grants, ending, waiting))
    # the record room's paper queue, unless the warehouse's borrowing takes the requests
    if "reading.paper" in staff.permissions and not handled_elsewhere(rt):
        open_requests = _count(session, select(PaperRequest.id).where(
            PaperRequest.status == "open"))
        out.append(HomePanel("reading.paper", "纸质病案调阅", (
            HomeItem("待处理的调阅申请", open_requests, "/reading/paper/queue",
                     "warn" if open_requests else ""),
        ), permission="reading.paper", order=62, href="/reading/paper/queue"))
    return out

"""bingan recovery plugin: records back from the wards (REQUIREMENTS R1-R4) and the
2-working-day archiving rate (shared/DOMAIN.md).

Hookimpls only; the logic lives in calendar (working days), service (due lists, recovery,
uploads, 补单, rates), label (the 50 x 30 mm PDF), receipt (ESC/POS) and web.
"""

from __future__ import annotations

from pathlib import Path

from bingan.hooks import hookimpl
from bingan.hooks.types import NavItem, PermissionInfo, PluginInfo

from bingan_recovery.settings import RecoverySettings

HERE = Path(__file__).parent

PLUGIN = PluginInfo(
    name="recovery", version="0.1.0", hooks_api="1.1", settings=RecoverySettings,
    depends_on=("capture",), templates=HERE / "templates", static=HERE / "static",
    migrations=HERE / "migrations" / "versions", title="病案回收",
)


@hookimpl
def register_routes():
    from bingan_recovery.web import ROUTES

    return list(ROUTES)


@hookimpl
def register_nav():
    return [
        NavItem("待回收病案", "/recovery", "recovery.view", "病案回收", 40),
        NavItem("病案室签收", "/recovery/room", "recovery.room", "病案回收", 41),
        NavItem("病区回收（手机）", "/recovery/phone", "recovery.ward", "病案回收", 42),
        NavItem("补单登记", "/recovery/supplements", "recovery.room", "病案回收", 43),
        NavItem("归档率统计", "/recovery/stats", "recovery.view", "病案回收", 44),
        NavItem("节假日设置", "/recovery/calendar", "recovery.calendar", "病案回收", 45),
    ]


@hookimpl
def register_permissions():
    return [
        PermissionInfo("recovery.view", "查看待回收病案、超期与归档率统计",
                       default_roles=("records", "clerk")),
        PermissionInfo("recovery.ward", "到病区回收病案（手机扫码、上传、打印交接单）",
                       default_roles=("records", "clerk")),
        PermissionInfo("recovery.room", "病案室扫码签收、打印标签、登记补单",
                       default_roles=("records", "clerk")),
        PermissionInfo("recovery.calendar", "维护本院节假日设置（停诊、调休上班）",
                       default_roles=("records",)),
    ]


@hookimpl
def audit_action_labels():
    return {
        "recovery.recover": "回收病案",
        "recovery.upload": "上传病区回收记录",
        "recovery.label": "打印病案标签",
        "recovery.receipt": "打印病区交接单",
        "recovery.supplement": "登记补单",
        "recovery.calendar_set": "设置本院节假日",
        "recovery.calendar_remove": "删除本院节假日",
        "recovery.calendar_check": "确认年度调休已核对",
        "recovery.export": "导出归档率统计",
    }


@hookimpl
def working_calendar(session, rt):
    """The national holidays and make-up days plus the hospital's own table."""
    from bingan_recovery import calendar

    return calendar.load(session)


@hookimpl
def pages_captured(admission, page_ids, rt) -> None:
    """Pages of a record with supplements waiting were captured: the supplements are in."""
    from bingan_recovery.service import supplements_captured

    with rt.sessions() as s, s.begin():
        supplements_captured(s, admission.id)


@hookimpl
def record_digitized(admission, document_version, rt) -> None:
    """A new version of the record was made: its captured supplements are in that version."""
    from bingan_recovery.service import supplements_archived

    with rt.sessions() as s, s.begin():
        supplements_archived(s, admission.id, document_version)




@hookimpl
def register_reports():
    """The archiving rate and what is overdue, on the reports page and the record room's
    dashboard."""
    from bingan.hooks.types import ReportChart, ReportColumn, ReportSpec

    from bingan_recovery.service import report_rows

    return [ReportSpec(
        key="recovery.rate", area="回收", title="出院病历归档率与超期",
        description="按出院日期：出院人数、按期（工作日）回收、已回收、归档率、超期未回收",
        query=report_rows, permission="recovery.view",
        columns=(ReportColumn("period", "出院日期 / 科室", "period", total="none"),
                 ReportColumn("discharged", "出院人数"),
                 ReportColumn("on_time", "按期回收"),
                 ReportColumn("recovered", "已回收"),
                 ReportColumn("rate", "归档率", "percent", total="ratio",
                              ratio=("on_time", "discharged")),
                 ReportColumn("overdue", "超期未回收")),
        chart=ReportChart("bar", "period", ("discharged", "on_time", "overdue"), ("rate",)),
        groups=("day", "week", "month", "department"), dashboards=("records",), order=40)]


@hookimpl
def home_panels(staff, session, rt):
    """The record room's recovery figures (what is still on the wards, what is overdue,
    补单 waiting); a physician's own records the record room still waits for (counts only:
    the home page names no record)."""
    from sqlalchemy import func, select

    from bingan.hooks.types import HomeItem, HomePanel
    from bingan_recovery import calendar as wcal
    from bingan_recovery.models import Supplement
    from bingan_recovery.service import due_counts

    out = []
    cal = None
    if "recovery.view" in staff.permissions:
        cal = wcal.load(session)
        due, late = due_counts(session, rt, cal=cal)
        items = [HomeItem("待回收病案", due, "/recovery"),
                 HomeItem("超期未回收", late, "/recovery?by=ward", "alert" if late else "")]
        if "recovery.room" in staff.permissions:
            waiting = int(session.scalar(select(func.count()).select_from(Supplement).where(
                Supplement.status == "waiting")) or 0)
            items.append(HomeItem("补单待采集", waiting, "/recovery/supplements",
                                  "warn" if waiting else ""))
        out.append(HomePanel("recovery.due", "病案回收", tuple(items),
                             permission="recovery.view", order=50, href="/recovery"))
    if "physician" in staff.roles:
        due, late = due_counts(session, rt, attending=staff.staff_no, cal=cal)
        days = rt.settings(RecoverySettings).due_working_days
        out.append(HomePanel("recovery.mine", "我的出院病历归档", (
            HomeItem("病案室尚未收到", due, tone="warn" if due else ""),
            HomeItem("已超期", late, tone="alert" if late else ""),
        ), order=45, note=f"按您作为主治医师的出院病历计；出院后 {days} 个工作日内应交回病案室。"))
    return out


@hookimpl
def record_panels(record, session, rt):
    """On the record page (core decided ``view``): where the paper record is in recovery
    (waiting on the ward and how overdue, or received: when, by whom, through a ward handover
    or the record room's desk, and its 补单), for staff who see the recovery lists."""
    if "recovery.view" not in record.staff.permissions:
        return []
    from bingan.hooks.types import RecordPanel
    from bingan_recovery.models import SUPPLEMENT_STATUS
    from bingan_recovery.service import record_status

    status = record_status(session, rt, record.admission.id)
    if status is None:
        return []
    return [RecordPanel("recovery.status", "病案回收", "recovery/record_panel.html", order=65,
                        data={**status, "supplement_labels": SUPPLEMENT_STATUS})]

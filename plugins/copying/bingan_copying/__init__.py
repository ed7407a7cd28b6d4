"""bingan copying plugin: the copy counter that replaces the photocopier (REQUIREMENTS M11)
with the print register and print audit (M12).

Hookimpls only; the logic lives in service (requests, rules, approvals), identity (encrypted
documents), stamp (the stamped PDF), printing (CUPS, downloads, the register), stats and web.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from bingan.hooks import hookimpl
from bingan.hooks.types import JobSpec, NavItem, PermissionInfo, PluginInfo, RecordLink

from bingan_copying.settings import CopyingSettings
from bingan.hooks.types import Runtime

HERE = Path(__file__).parent

PLUGIN = PluginInfo(
    name="copying", version="0.1.0", hooks_api="1.0", settings=CopyingSettings,
    templates=HERE / "templates", static=HERE / "static",
    migrations=HERE / "migrations" / "versions", title="病历复印",
)


@hookimpl
def register_routes():
    from bingan_copying.web import ROUTES

    return list(ROUTES)


@hookimpl
def register_nav():
    return [
        NavItem("复印登记", "/copying/new", "copying.counter", "病历复印", 50),
        NavItem("复印申请", "/copying", "copying.counter", "病历复印", 51),
        NavItem("异地复印申请", "/copying/remote/new", "copying.remote", "病历复印", 52),
        NavItem("异地申请队列", "/copying/queue", "copying.approve", "病历复印", 53),
        NavItem("复印统计", "/copying/stats", "copying.stats", "病历复印", 54),
    ]


@hookimpl
def record_links(record):
    """A copy request for this record, for the copy counter and the wards' remote requests."""
    if not {"copying.counter", "copying.remote"} & record.staff.permissions:
        return []
    no = quote(record.admission.admission_no, safe="")
    if "copying.counter" not in record.staff.permissions:  # a ward or branch: a remote request
        return [RecordLink("异地复印申请", f"/copying/remote/new?adm={no}", 40,
                           "为本次住院的病案登记异地复印申请")]
    return [RecordLink("复印登记", f"/copying/new?adm={no}", 40, "为本次住院的病案登记复印申请")]


@hookimpl
def register_permissions():
    return [
        # the counter also needs ``print`` on records ([core.role_actions]: records has it)
        PermissionInfo("copying.counter", "复印窗口：登记复印申请、打印复印件",
                       default_roles=("records",)),
        PermissionInfo("copying.identity", "查看复印申请人的证件影像", default_roles=("records",)),
        PermissionInfo("copying.remote", "院区/病区登记异地复印申请", default_roles=()),
        PermissionInfo("copying.approve", "审批异地复印申请（中心病案室）",
                       default_roles=("records",)),
        PermissionInfo("copying.stats", "复印统计与导出", default_roles=("records",)),
    ]


@hookimpl
def audit_action_labels():
    return {
        "copying.lookup": "复印窗口查找病案",
        "copying.register": "登记病历复印申请",
        "copying.refused": "拒绝复印申请（材料不全等）",
        "copying.print": "打印病历复印件",
        "copying.download": "下载病历复印件",
        "copying.approve": "批准异地复印申请",
        "copying.reject": "驳回异地复印申请",
        "copying.identity_view": "查看复印申请人证件影像",
        "copying.identity_purge": "删除到期的证件影像",
        "copying.stats_export": "导出复印统计",
    }


def purge_identity_images(rt: Runtime) -> int:
    """Scheduled: delete identity images whose retention has passed."""
    from bingan_copying.identity import purge

    return purge(rt, rt.settings(CopyingSettings))


@hookimpl
def register_jobs():
    return [JobSpec("copying.identity_purge", purge_identity_images, "cron",
                    {"hour": 2, "minute": 40}, "删除保存期满的复印申请人证件影像")]


@hookimpl(optionalhook=True)
def booking_approved(session, booking, rt):
    """An online booking approved in the booking plugin's back office becomes a registered
    copy request here (the counter prints it as any other)."""
    from bingan_copying.service import from_booking

    return from_booking(session, rt, booking)


@hookimpl
def register_commands(cli):
    from bingan_copying.cli import copying

    cli.add_command(copying)




@hookimpl
def register_reports():
    """复印统计 on the reports page and the record room's dashboard."""
    from bingan.hooks.types import ReportChart, ReportColumn, ReportSpec

    from bingan_copying.stats import report_rows

    return [ReportSpec(
        key="copying.copies", area="复印", title="病历复印统计",
        description="复印申请、份数、页数与收费（已登记、已批准、已打印的申请）",
        query=report_rows, permission="copying.stats",
        columns=(ReportColumn("period", "日期 / 科室", "period", total="none"),
                 ReportColumn("requests", "申请数"), ReportColumn("copies", "份数"),
                 ReportColumn("pages", "页数（含份数）"),
                 ReportColumn("fee", "收费（元）", "money")),
        chart=ReportChart("bar", "period", ("requests", "copies", "pages")),
        groups=("day", "week", "month", "department"), dashboards=("records",), order=30)]


@hookimpl
def home_panels(staff, session, rt):
    """Copying work on the home page: the counter's requests registered and not printed yet;
    remote requests waiting for the record room's approval; a ward's own remote requests
    (waiting, or approved and to be printed there)."""
    perms = staff.permissions
    counter, approver, remote = ("copying.counter" in perms, "copying.approve" in perms,
                                 "copying.remote" in perms)
    if not (counter or approver or remote):
        return []
    from sqlalchemy import func, select

    from bingan.hooks.types import HomeItem, HomePanel
    from bingan_copying.models import CopyRequest

    def count(*where) -> int:
        return int(session.scalar(select(func.count()).select_from(CopyRequest)
                                  .where(*where)) or 0)

    items = []
    if counter:
        n = count(CopyRequest.status == "registered", CopyRequest.site.is_(None))
        items.append(HomeItem("窗口已登记待打印", n, "/copying?status=registered",
                              "warn" if n else ""))
    if approver:
        n = count(CopyRequest.status == "pending", CopyRequest.site.is_not(None))
        items.append(HomeItem("异地申请待审批", n, "/copying/queue?status=pending",
                              "warn" if n else ""))
    if remote:
        mine = CopyRequest.operator_no == staff.staff_no
        n = count(mine, CopyRequest.status == "approved")
        items += [HomeItem("我登记的待中心审批", count(mine, CopyRequest.status == "pending"),
                           "/copying/queue?status=pending"),
                  HomeItem("已批准待打印", n, "/copying/queue?status=approved",
                           "warn" if n else "")]
    return [HomePanel("copying.work", "病历复印", tuple(items), order=55,
                      href="/copying" if counter else "/copying/queue")]

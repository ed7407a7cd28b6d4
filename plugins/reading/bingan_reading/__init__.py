"""bingan reading plugin: who may read a record, applications and approvals with deadlines,
and the watermarked viewer (REQUIREMENTS M6, M7, M8, M9, M10, M12).

Hookimpls only; the logic lives in policy (access votes), applications, rules, watermark, web
and cli.
"""

from __future__ import annotations

from pathlib import Path

from bingan.hooks import hookimpl
from bingan.hooks.types import NavItem, PermissionInfo, PluginInfo

from bingan_reading.settings import ReadingSettings

HERE = Path(__file__).parent

PLUGIN = PluginInfo(
    name="reading", version="0.1.0", hooks_api="1.1", settings=ReadingSettings,
    templates=HERE / "templates", static=HERE / "static",
    migrations=HERE / "migrations" / "versions", title="病案查阅",
)


@hookimpl
def access_vote(context, rt):
    from bingan_reading.policy import vote

    return vote(context, rt)


@hookimpl
def access_scope(context, rt):
    from bingan_reading.policy import scope

    return scope(context, rt)


@hookimpl
def register_routes():
    from bingan_reading.web import ROUTES

    return list(ROUTES)


@hookimpl
def record_panels(record, session, rt):
    from bingan_reading.web import record_panels

    return record_panels(record, session, rt)


@hookimpl
def record_denied(record, session, rt):
    from bingan_reading.web import record_denied

    return record_denied(record, session, rt)


@hookimpl
def register_nav(rt):
    from bingan_reading.paper import handled_elsewhere

    items = [
        # 三员分立: the system administrator, security administrator and auditor read no
        # records, so they have no applications of their own (reading.apply is not theirs)
        NavItem("我的查阅申请", "/reading/applications", "reading.apply", "病案查阅", 40),
        NavItem("新的查阅申请", "/reading/apply", "reading.apply", "病案查阅", 41),
        NavItem("待审批", "/reading/approvals", "reading.approve", "病案查阅", 42),
        NavItem("我的查阅授权", "/reading/grants", "reading.apply", "病案查阅", 43),
        NavItem("查阅授权管理", "/reading/grants/manage", "reading.rules", "病案查阅", 43),
        NavItem("阅读权限管理", "/reading/rules", "reading.rules", "病案查阅", 44),
        NavItem("权限判定说明", "/reading/explain", "reading.rules", "病案查阅", 45),
    ]
    if not handled_elsewhere(rt):  # the warehouse's borrowing queue is the only one then
        items.append(NavItem("纸质病案调阅", "/reading/paper/queue", "reading.paper", "病案查阅", 46))
    return items


@hookimpl
def register_permissions():
    return [
        # every role that works with records; never the three duty roles (a database made
        # before this permission existed gets it for its other roles: migration r003)
        PermissionInfo("reading.apply", "提交病案查阅申请，查看本人的申请与授权",
                       default_roles=("records", "clerk", "qc", "physician", "nurse")),
        PermissionInfo("reading.approve", "审批病案查阅申请（菜单；审批人由配置决定）",
                       default_roles=("records",)),
        PermissionInfo("reading.rules", "管理阅读权限、撤销授权", default_roles=("admin",)),
        PermissionInfo("reading.stats", "查阅统计（检索、查阅、申请与审批，按科室）",
                       default_roles=("records",)),
        PermissionInfo("reading.paper", "处理纸质病案调阅申请（病案室送出或答复）",
                       default_roles=("records",)),
    ]


@hookimpl(trylast=True)
def paper_record_request(admission, user, rt):
    """The record room's own request form (for staff who work with records), only when no
    other plugin takes paper requests: with the warehouse enabled its borrowing is the one
    way (someone its permissions leave out gets no second queue here)."""
    from urllib.parse import quote

    from bingan.hooks.types import RecordLink
    from bingan_reading.paper import handled_elsewhere, may_request

    if not may_request(user) or handled_elsewhere(rt):
        return None
    return RecordLink("调阅纸质病案", f"/reading/paper?admission_no={quote(admission.admission_no)}",
                      title="向病案室申请调阅纸质病案")


@hookimpl
def audit_action_labels():
    return {
        "record.page_view": "查看病案页面",
        "reading.lookup": "按病案号查找病案",
        "reading.apply": "提交查阅申请",
        "reading.approve": "批准查阅申请",
        "reading.reject": "驳回查阅申请",
        "reading.cancel": "撤回查阅申请",
        "reading.rule.add": "新增阅读权限规则",
        "reading.rule.revoke": "撤销阅读权限规则",
        "reading.explain": "查阅权限判定说明",
        "reading.paper.request": "申请调阅纸质病案",
        "reading.paper.decide": "处理纸质病案调阅申请",
        "reading.paper.cancel": "撤回纸质病案调阅申请",
    }


@hookimpl
def register_commands(cli):
    from bingan_reading.cli import access

    cli.add_command(access)




@hookimpl
def register_reports():
    """Reading activity by department (record room) and a physician's own (dashboard)."""
    from bingan.hooks.types import ReportChart, ReportColumn, ReportSpec

    from bingan_reading import stats

    cols = (ReportColumn("searches", "检索"), ReportColumn("reads", "查阅病案"),
            ReportColumn("refused", "查阅被拒"), ReportColumn("applied", "查阅申请"),
            ReportColumn("approved", "已批准"), ReportColumn("rejected", "已驳回"))
    return [
        ReportSpec(key="reading.activity", area="阅览", title="检索与查阅统计",
                   description="检索次数、查阅与被拒、查阅申请及审批结果，按申请人科室或按时间",
                   query=stats.department_rows, permission="reading.stats",
                   columns=(ReportColumn("period", "科室 / 日期", "period", total="none"),
                            *cols),
                   chart=ReportChart("bar", "period", ("searches", "reads", "applied")),
                   groups=("department", "day", "week", "month"), dashboards=("records",),
                   order=20),
        ReportSpec(key="reading.mine", area="阅览", title="我的检索与查阅",
                   description="本人的检索、查阅与查阅申请",
                   query=stats.my_rows, permission=None, department_filter=False,
                   columns=(ReportColumn("period", "日期", "period", total="none"), *cols),
                   chart=ReportChart("line", "period", ("searches", "reads", "applied")),
                   groups=("day", "week", "month"), dashboards=("physician",), order=21),
    ]


@hookimpl
def home_panels(staff, session, rt):
    """Everyone's applications and grants; approvers' queue; the record room's paper queue."""
    from bingan_reading.home import panels

    return panels(staff, session, rt)

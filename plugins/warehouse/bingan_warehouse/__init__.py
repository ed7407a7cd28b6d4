"""bingan warehouse plugin: where each paper record is kept (W1-W3).

Warehouse (name, building, floor) -> shelf (row, column, level) -> box (box number, barcode)
-> records; boxing by scanning; box and shelf labels; finding a paper record with its full
path and tracking state; borrowing the paper record; statistics. Physical events go to the
tracking plugin through core's ``paper_record_event``. Hookimpls only; the logic lives in
service and labels, the pages in web.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from bingan.hooks import hookimpl
from bingan.hooks.types import (
    JobSpec, NavItem, PermissionInfo, PluginInfo, RecordLink, RecordPanel,
)

from bingan_warehouse.settings import WarehouseSettings

HERE = Path(__file__).parent

PLUGIN = PluginInfo(
    name="warehouse", version="0.1.0", hooks_api="1.1", settings=WarehouseSettings,
    depends_on=("tracking", "recovery"), templates=HERE / "templates", static=HERE / "static",
    migrations=HERE / "migrations" / "versions", title="病案库房",
)


@hookimpl
def register_routes():
    from bingan_warehouse.web import ROUTES

    return list(ROUTES)


@hookimpl
def register_nav():
    return [
        NavItem("纸质病案查找", "/warehouse/find", "warehouse.find", "病案库房", 60),
        NavItem("扫码装箱", "/warehouse/boxing", "warehouse.box", "病案库房", 61),
        NavItem("库房与货架", "/warehouse/places", "warehouse.view", "病案库房", 62),
        NavItem("纸质病案借阅", "/warehouse/loans", "warehouse.lend", "病案库房", 63),
        NavItem("库房统计", "/warehouse/stats", "warehouse.view", "病案库房", 64),
        NavItem("我的纸质病案借阅", "/warehouse/loans/mine", "warehouse.request", "病案查阅", 69),
    ]


@hookimpl
def register_permissions():
    return [
        PermissionInfo("warehouse.view", "查看库房、货架、病案箱与库房统计",
                       default_roles=("records", "clerk")),
        PermissionInfo("warehouse.find", "查找纸质病案所在位置（只显示有权查阅的病案）",
                       default_roles=("records", "clerk")),
        PermissionInfo("warehouse.box", "扫码装箱、出箱、移箱、打印箱标签",
                       default_roles=("records", "clerk")),
        PermissionInfo("warehouse.manage", "新建库房、货架与病案箱", default_roles=("records",)),
        PermissionInfo("warehouse.lend", "出借与归还纸质病案", default_roles=("records", "clerk")),
        PermissionInfo("warehouse.request", "申请调阅纸质病案",
                       default_roles=("physician", "nurse", "qc", "records", "clerk")),
    ]


@hookimpl
def audit_action_labels():
    return {
        "warehouse.place": "新建库房、货架或病案箱",
        "warehouse.box": "扫码装箱",
        "warehouse.unbox": "病案出箱",
        "warehouse.box_move": "病案箱上架或移架",
        "warehouse.lookup": "查找纸质病案位置",
        "warehouse.label": "打印库房标签",
        "warehouse.loan_request": "申请调阅纸质病案",
        "warehouse.lend": "出借纸质病案",
        "warehouse.loan_reject": "不出借纸质病案",
        "warehouse.return": "归还纸质病案",
        "warehouse.export": "导出库房统计",
    }


@hookimpl
def register_jobs(rt):
    from bingan_warehouse.service import reminder_job

    hour = rt.settings(WarehouseSettings).reminder_hour
    return [JobSpec("warehouse.loan_reminders", reminder_job, "cron", {"hour": hour},
                    "提醒借阅人归还超期的纸质病案")]


@hookimpl
def paper_record_request(admission, user, rt):
    """Anyone who may ask for paper records gets the borrowing request form."""
    if "warehouse.request" not in user.permissions or not admission.barcode:
        return None
    return RecordLink("申请调阅纸质病案", "/warehouse/loans/request?barcode="
                      + quote(admission.barcode), title="向病案室申请借阅这份病案的纸质原件")


@hookimpl
def record_links(record, session, rt):
    """On the record page: ask for the paper record."""
    link = paper_record_request(record.admission, record.staff, rt)
    return [RecordLink(link.label, link.href, order=60, title=link.title)] if link else []


@hookimpl
def record_panels(record, session, rt):
    """On the record page (core decided ``view``): where the paper record is, its tracking
    state and whether it is lent, for staff who may look paper records up."""
    if "warehouse.find" not in record.staff.permissions:
        return []
    from bingan_warehouse.service import Query, lookup

    found, _ = lookup(session, rt, Query(admission_no=record.admission.admission_no), limit=1)
    if not found:
        return []
    f = found[0]
    return [RecordPanel("warehouse.place", "纸质病案", "warehouse/panel.html", order=70,
                        data={"path": f.path, "box_no": f.place.box_no, "position": f.position,
                              "state": f.state, "loan": f.loan})]


@hookimpl
def demo_loaded(admissions, rt) -> None:
    from bingan_warehouse.demo import load_demo

    load_demo(rt, admissions)


@hookimpl
def register_reports():
    """How full the warehouses are (box places and box capacity), per warehouse or shelf,
    with the period's boxing and unboxing, on the reports page and the record room's
    dashboard."""
    from bingan.hooks.types import ReportChart, ReportColumn, ReportSpec

    from bingan_warehouse.service import occupancy_rows

    return [ReportSpec(
        key="warehouse.occupancy", area="库房", title="库房占用率",
        description="当前各库房（或货架）的箱位占用率与病案箱容量占用率；本期装箱、出箱为统计区间内的扫码数",
        query=occupancy_rows, permission="warehouse.view",
        columns=(ReportColumn("place", "库房 / 货架", "text", total="none"),
                 ReportColumn("shelves", "货架层位"),
                 ReportColumn("box_capacity", "可放箱数"),
                 ReportColumn("boxes", "在架箱数"),
                 ReportColumn("box_rate", "箱位占用率", "percent", total="ratio",
                              ratio=("boxes", "box_capacity")),
                 ReportColumn("records", "在箱病案"),
                 ReportColumn("capacity", "箱容量（份）"),
                 ReportColumn("rate", "病案占用率", "percent", total="ratio",
                              ratio=("records", "capacity")),
                 ReportColumn("boxed", "本期装箱"),
                 ReportColumn("unboxed", "本期出箱")),
        chart=ReportChart("bar", "place", ("boxed", "unboxed"), ("box_rate", "rate")),
        groups=("warehouse", "shelf"), department_filter=False, dashboards=("records",),
        order=60)]


@hookimpl
def home_panels(staff, session, rt):
    """The record room's loans (requests to fulfil, records out, overdue) and a borrower's own
    paper records out (shown while there are any)."""
    import datetime as dt

    from sqlalchemy import func, select

    from bingan.core.models import utcnow
    from bingan.hooks.types import HomeItem, HomePanel
    from bingan_warehouse.models import Loan

    today = utcnow().astimezone(rt.tz).date()
    soon = today + dt.timedelta(days=3)

    def count(*where) -> int:
        return int(session.scalar(select(func.count()).select_from(Loan).where(*where)) or 0)

    out = []
    if "warehouse.lend" in staff.permissions:
        asked = count(Loan.status == "requested")
        late = count(Loan.status == "lent", Loan.due_back < today)
        out.append(HomePanel("warehouse.loans", "纸质病案借阅", (
            HomeItem("待出借的调阅申请", asked, "/warehouse/loans", "warn" if asked else ""),
            HomeItem("借出未还", count(Loan.status == "lent"), "/warehouse/loans"),
            HomeItem("3 天内到期", count(Loan.status == "lent", Loan.due_back >= today,
                                       Loan.due_back <= soon), "/warehouse/loans"),
            HomeItem("超期未还", late, "/warehouse/loans", "alert" if late else ""),
        ), permission="warehouse.lend", order=60, href="/warehouse/loans"))
    if "warehouse.request" in staff.permissions:
        mine = Loan.borrower_no == staff.staff_no
        asked, out_now = count(mine, Loan.status == "requested"), count(mine, Loan.status == "lent")
        if asked or out_now:
            late = count(mine, Loan.status == "lent", Loan.due_back < today)
            out.append(HomePanel("warehouse.mine", "我借阅的纸质病案", (
                HomeItem("申请中", asked, "/warehouse/loans/mine"),
                HomeItem("借阅中", out_now, "/warehouse/loans/mine"),
                HomeItem("已超期，请归还", late, "/warehouse/loans/mine", "alert" if late else ""),
            ), permission="warehouse.request", order=46, href="/warehouse/loans/mine"))
    return out

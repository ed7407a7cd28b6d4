"""bingan qc plugin: acceptance sampling per batch (5%, seeded), page-by-page inspection,
rework until accepted, per-record spot checks, batch acceptance report (D7, D8).

It reads capture's batches and sends pages to rework only through hooks
(``capture_batches``, ``batch_records``, ``request_rework``, ``pages_captured``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bingan.hooks import hookimpl
from bingan.hooks.types import NavItem, PermissionInfo, PluginInfo
from bingan_qc.settings import QcSettings

HERE = Path(__file__).parent

PLUGIN = PluginInfo(
    name="qc", version="0.1.0", title="抽检验收", depends_on=("capture",),
    settings=QcSettings, templates=HERE / "templates", static=HERE / "static",
    migrations=HERE / "migrations" / "versions",
)


@hookimpl
def register_permissions() -> list[PermissionInfo]:
    return [PermissionInfo("qc.inspect", "抽检验收（抽样、逐页检查、现场抽查）", default_roles=("qc",))]


@hookimpl
def register_nav() -> list[NavItem]:
    return [NavItem("抽检验收", "/qc", "qc.inspect", "数字化", 30)]


@hookimpl
def register_routes() -> list[Any]:
    from bingan_qc.web import ROUTES

    return ROUTES


@hookimpl
def pages_captured(admission, page_ids, rt) -> None:
    """Re-captured pages of a record that failed inspection: it waits for re-inspection."""
    from bingan_qc.sampling import on_pages_captured

    on_pages_captured(rt, admission.id, list(page_ids))


@hookimpl
def record_work(session, admission) -> list[str]:
    """``qc_sample`` while the record is in a QC sample not yet accepted."""
    from bingan_qc.sampling import record_work as work

    return work(session, admission.id)


@hookimpl
def audit_action_labels() -> dict[str, str]:
    """Audit actions of qc, named for the audit pages."""
    return {
        "qc.sample": "抽取抽检样本",
        "qc.inspect.sample": "抽检验收检查",
        "qc.inspect.spot": "现场抽查",
        "qc.lookup": "抽检时查找病案",
        "qc.page.view": "抽检时查看页面图像",
        "qc.inspect.denied": "检查不在质检工作中的病案",
        "qc.report.export": "导出抽检验收报告",
    }


@hookimpl
def register_reports() -> list[Any]:
    """The QC pass rate, on the reports page and the QC dashboard."""
    from bingan.hooks.types import ReportChart, ReportColumn, ReportSpec

    from bingan_qc.stats import qc_rows

    return [ReportSpec(
        key="qc.pass_rate", area="质控", title="质控合格率",
        description="抽检与现场抽查的病案数、合格数、合格率、检查页数、不合格页数与返工",
        query=qc_rows, permission="qc.inspect",
        columns=(ReportColumn("period", "日期 / 科室", "period", total="none"),
                 ReportColumn("inspected", "检查病案"), ReportColumn("passed", "合格"),
                 ReportColumn("rate", "合格率", "percent", total="ratio",
                              ratio=("passed", "inspected")),
                 ReportColumn("pages", "检查页数"), ReportColumn("failed_pages", "不合格页"),
                 ReportColumn("rework", "返工")),
        chart=ReportChart("bar", "period", ("inspected", "passed"), ("rate",)),
        groups=("day", "week", "month", "department"), dashboards=("qc", "records"),
        order=10)]


@hookimpl
def home_panels(staff, session, rt):
    """The inspector's queue on the home page: sampled records waiting for a first inspection
    or a re-inspection after rework, those in rework, and what she inspected today."""
    if "qc.inspect" not in staff.permissions:
        return []
    import datetime as dt

    from sqlalchemy import func, select

    from bingan.hooks.types import HomeItem, HomePanel
    from bingan_qc.models import QcInspection, QcSampleItem

    by_status = dict(session.execute(select(QcSampleItem.status, func.count())
                                     .group_by(QcSampleItem.status)).all())
    start = dt.datetime.combine(dt.datetime.now(rt.tz).date(), dt.time(), rt.tz)
    mine = int(session.scalar(select(func.count()).select_from(QcInspection).where(
        QcInspection.inspector == staff.staff_no, QcInspection.created_at >= start)) or 0)
    pending, again = by_status.get("pending", 0), by_status.get("reinspect", 0)
    return [HomePanel("qc.queue", "抽检验收", (
        HomeItem("待检病案", pending, "/qc", "warn" if pending else ""),
        HomeItem("已返工待复检", again, "/qc", "warn" if again else ""),
        HomeItem("不合格返工中", by_status.get("failed", 0), "/qc"),
        HomeItem("我今日已检", mine),
    ), permission="qc.inspect", order=30, href="/qc")]

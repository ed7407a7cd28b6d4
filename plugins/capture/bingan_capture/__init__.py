"""bingan capture plugin: sources (hot folder, upload, phone, SANE), durable ingestion,
barcode identification, unidentified and rework queues, batches and plans (D1, D7, D9)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from bingan.hooks import hookimpl
from bingan.hooks.types import (
    AdmissionRef, NavItem, PageImage, PermissionInfo, PluginInfo, Runtime, TaskHandler,
)
from bingan_capture import hookspecs
from bingan_capture.hookspecs import BatchInfo, BatchRecord, CaptureSource
from bingan_capture.settings import CaptureSettings

if TYPE_CHECKING:  # pragma: no cover - typing only
    from sqlalchemy.orm import Session

HERE = Path(__file__).parent

PLUGIN = PluginInfo(
    name="capture", version="0.1.0", hooks_api="1.1", title="病案采集", settings=CaptureSettings,
    templates=HERE / "templates", static=HERE / "static",
    migrations=HERE / "migrations" / "versions", hookspecs=hookspecs,
)


@hookimpl
def register_permissions() -> list[PermissionInfo]:
    return [PermissionInfo("capture.operate", "病案采集（上传、扫描、待识别、返工）",
                           default_roles=("records", "clerk")),
            PermissionInfo("capture.plan", "采集批次与计划", default_roles=("records",))]


@hookimpl
def register_nav() -> list[NavItem]:
    g = "数字化"
    return [
        NavItem("采集工作台", "/capture", "capture.operate", g, 20),
        NavItem("上传页面", "/capture/upload", "capture.operate", g, 21),
        NavItem("待识别", "/capture/unidentified", "capture.operate", g, 23),
        NavItem("返工队列", "/capture/rework", "capture.operate", g, 24),
        NavItem("批次与计划", "/capture/batches", "capture.plan", g, 25),
    ]


@hookimpl
def register_routes() -> list[Any]:
    from bingan_capture.web import ROUTES

    return ROUTES


@hookimpl
def register_commands(cli) -> None:
    from bingan_capture.cli import capture_group

    cli.add_command(capture_group)


@hookimpl
def register_task_handlers() -> dict[str, TaskHandler]:
    from bingan_capture.ingest import TASK_KIND
    from bingan_capture.process import handle_task

    return {TASK_KIND: handle_task}


@hookimpl
def capture_sources(rt: Runtime) -> list[CaptureSource]:
    from bingan_capture.sources import builtin_sources

    return builtin_sources(rt)


@hookimpl
def identify_admission(image: PageImage, hint: dict[str, Any]) -> str | None:
    """The record barcode on a page (zxing-cpp, Code 128 / cover-sheet QR). Uses the texts
    already decoded by capture (``hint["codes"]``) when given."""
    from bingan_capture.codes import parse_texts, read_codes

    texts = (hint or {}).get("codes")
    codes = parse_texts(texts) if texts is not None else read_codes(image)
    return codes.record_barcode


@hookimpl
def capture_batches(session: Session) -> list[BatchInfo]:
    from bingan_capture.batches import batch_infos

    return batch_infos(session)


@hookimpl
def batch_records(session: Session, batch_id: int) -> list[BatchRecord] | None:
    from bingan_capture.batches import batch_records as records

    return records(session, batch_id)


@hookimpl
def request_rework(session: Session, admission: AdmissionRef, page_ids: list[int], reason: str,
                   by: str | None, rt: Runtime) -> list[int] | None:
    from bingan_capture.process import request_rework as rework

    return rework(session, rt, admission, page_ids, reason, by)


@hookimpl
def expected_pages(session: Session, admission: AdmissionRef) -> int | None:
    """The page count declared for the record by the newest capture batch holding it."""
    from bingan_capture.batches import expected_pages as expected

    return expected(session, admission.id)


@hookimpl
def digitization_blockers(session: Session, admission: AdmissionRef) -> list[str]:
    """Open rework items block the digitized status: ``第 3 页待返工：…``, ``整份病案待返工：…``."""
    from bingan_capture.process import digitization_blockers as blockers

    return blockers(session, admission.id)


@hookimpl
def task_failed(kind, payload, error, attempts, rt) -> None:
    """A capture that could not be processed says why on the capture page."""
    from bingan_capture.ingest import TASK_KIND
    from bingan_capture.process import capture_failed

    if kind == TASK_KIND:
        capture_failed(rt, int(payload["capture_id"]), error, attempts)


@hookimpl
def record_work(session, admission, rt) -> list[str]:
    """``capture`` while the record is being captured, ``rework`` while rework is open."""
    from bingan_capture.process import record_work as work

    return work(session, admission.id, rt.settings(CaptureSettings).work_hours)


@hookimpl
def demo_loaded(admissions: list[AdmissionRef], rt: Runtime) -> None:
    from bingan_capture.demo import load_demo_pages

    load_demo_pages(rt, admissions)


@hookimpl
def audit_action_labels() -> dict[str, str]:
    """Audit actions of capture, named for the audit pages."""
    return {
        "capture.receive": "接收采集文件",
        "capture.assign": "指定未识别页面所属病案",
        "capture.discard": "搁置未识别页面",
        "capture.rework.done": "完成整份病案返工",
        "capture.batch.create": "新建采集批次",
        "capture.batch.status": "开启或关闭采集批次",
        "capture.plan.set": "设置每日采集计划",
        "capture.lookup": "采集时查找病案",
        "capture.page.view": "采集时查看页面图像",
        "capture.frame.view": "查看待识别页面图像",
        "capture.report.export": "导出采集进度报告",
        "capture.cover.print": "打印病案条码封面",
        "capture.condition": "记录纸质病案状况评估",
    }


@hookimpl
def register_reports() -> list[Any]:
    """Production against plan, on the reports page and the record room's dashboard."""
    from bingan.hooks.types import ReportChart, ReportColumn, ReportSpec

    from bingan_capture.stats import production_rows

    return [ReportSpec(
        key="capture.production", area="生产", title="数字化产量与计划",
        description="每日/周/月采集的页数与病案数、计划页数与完成率、返工",
        query=production_rows, permission="capture.plan",
        columns=(ReportColumn("period", "日期", "period", total="none"),
                 ReportColumn("pages", "页数"), ReportColumn("records", "病案数"),
                 ReportColumn("plan", "计划页数"),
                 ReportColumn("done", "计划完成率", "percent", total="ratio",
                              ratio=("pages", "plan")),
                 ReportColumn("rework_opened", "新增返工"),
                 ReportColumn("rework_closed", "完成返工")),
        chart=ReportChart("bar", "period", ("pages", "plan"), ("done",)),
        dashboards=("records",), order=10)]


@hookimpl
def home_panels(staff, session, rt):
    """The clerk's day on the home page: today's plan and pages, open batches, and what waits
    in her queues (rework, unidentified pages, failed files)."""
    if "capture.operate" not in staff.permissions:
        return []
    from sqlalchemy import func, select

    from bingan.hooks.types import HomeItem, HomePanel
    from bingan_capture import batches as bt
    from bingan_capture.models import CaptureBatch, CapturePlan

    counts = bt.today_counts(session, rt.tz)
    day = bt.today(rt.tz)
    planned = int(session.scalar(
        select(func.sum(CapturePlan.planned_pages)).join(
            CaptureBatch, CaptureBatch.id == CapturePlan.batch_id)
        .where(CapturePlan.day == day, CaptureBatch.status == "open")) or 0)
    open_batches = int(session.scalar(select(func.count()).select_from(CaptureBatch).where(
        CaptureBatch.status == "open")) or 0)
    may_plan = "capture.plan" in staff.permissions
    items = [
        HomeItem("今日计划页数", planned, "/capture/batches" if may_plan else None),
        HomeItem("今日已采集页数", counts["pages"], "/capture",
                 "warn" if planned and counts["pages"] < planned else ""),
        HomeItem("进行中的批次", open_batches, "/capture/batches" if may_plan else None),
        HomeItem("返工待处理", counts["rework"], "/capture/rework",
                 "warn" if counts["rework"] else ""),
        HomeItem("待识别页面", counts["unidentified"], "/capture/unidentified",
                 "warn" if counts["unidentified"] else ""),
        HomeItem("处理失败的文件", counts["failed"], "/capture", "alert" if counts["failed"] else ""),
    ]
    return [HomePanel("capture.today", "采集工作", tuple(items), permission="capture.operate",
                      order=20, href="/capture")]

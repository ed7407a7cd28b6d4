"""bingan capture plugin: sources (hot folder, upload, phone, SANE), durable ingestion,
barcode identification, unidentified and rework queues, batches and plans (D1, D7, D9)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bingan.hooks import hookimpl
from bingan.hooks.types import NavItem, PermissionInfo, PluginInfo
from bingan_capture.settings import CaptureSettings

HERE = Path(__file__).parent

PLUGIN = PluginInfo(
    name="capture", version="0.1.0", title="病案采集", settings=CaptureSettings,
    templates=HERE / "templates", static=HERE / "static",
    migrations=HERE / "migrations" / "versions",
)


@hookimpl
def register_migrations() -> list[str]:
    return [str(HERE / "migrations" / "versions")]


@hookimpl
def register_permissions() -> list[PermissionInfo]:
    return [PermissionInfo("capture.operate", "病案采集（上传、扫描、待识别、返工）",
                           default_roles=("records", "clerk")),
            PermissionInfo("capture.plan", "采集批次与计划", default_roles=("records",))]


@hookimpl
def register_nav() -> list[NavItem]:
    g = "数字化"
    return [
        NavItem("采集工作台", "/capture", "capture.operate", g, 20, "scan"),
        NavItem("上传页面", "/capture/upload", "capture.operate", g, 21, "upload"),
        NavItem("手机拍摄", "/capture/phone", "capture.operate", g, 22, "camera"),
        NavItem("待识别", "/capture/unidentified", "capture.operate", g, 23, "question"),
        NavItem("返工队列", "/capture/rework", "capture.operate", g, 24, "redo"),
        NavItem("批次与计划", "/capture/batches", "capture.plan", g, 25, "calendar"),
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
def register_task_handlers() -> dict[str, Any]:
    from bingan_capture.ingest import TASK_KIND
    from bingan_capture.process import handle_task

    return {TASK_KIND: handle_task}


@hookimpl
def capture_sources():
    from bingan_capture.sources import builtin_sources

    return builtin_sources()


@hookimpl
def identify_admission(image, hint) -> str | None:
    """The record barcode on a page (zxing-cpp, Code 128 / cover-sheet QR). Uses the texts
    already decoded by capture (``hint["codes"]``) when given."""
    from bingan_capture.codes import parse_texts, read_codes

    texts = (hint or {}).get("codes")
    codes = parse_texts(texts) if texts is not None else read_codes(image)
    return codes.record_barcode


@hookimpl
def capture_batches(session):
    from bingan_capture.batches import batch_infos

    return batch_infos(session)


@hookimpl
def batch_records(session, batch_id):
    from bingan_capture.batches import batch_records as records

    return records(session, batch_id)


@hookimpl
def request_rework(session, admission, page_ids, reason, by):
    from bingan.core.runtime import current
    from bingan_capture.process import request_rework as rework

    return rework(session, current(), admission, page_ids, reason, by)


@hookimpl
def expected_pages(session, admission) -> int | None:
    """The page count declared for the record by the newest capture batch holding it."""
    from bingan_capture.batches import expected_pages as expected

    return expected(session, admission.id)


@hookimpl
def digitization_blockers(session, admission) -> list[str]:
    """Open rework items block the digitized status: ``第 3 页待返工：…``, ``整份病案待返工：…``."""
    from bingan_capture.process import digitization_blockers as blockers

    return blockers(session, admission.id)


@hookimpl
def task_failed(kind, payload, error, attempts) -> None:
    """A capture that could not be processed says why on the capture page."""
    from bingan_capture.ingest import TASK_KIND
    from bingan_capture.process import capture_failed

    if kind == TASK_KIND:
        from bingan.core.runtime import current

        capture_failed(current(), int(payload["capture_id"]), error, attempts)


@hookimpl
def record_work(session, admission) -> list[str]:
    """``capture`` while the record is being captured, ``rework`` while rework is open."""
    from bingan.core.runtime import current
    from bingan_capture.process import record_work as work

    return work(session, admission.id, current().settings("capture").work_hours)


@hookimpl
def demo_loaded(admissions) -> None:
    from bingan.core.runtime import current
    from bingan_capture.demo import load_demo_pages

    load_demo_pages(current(), admissions)


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
    }

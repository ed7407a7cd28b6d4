"""bingan page index (M1): OCR every processed page, type it from its title band, let a clerk
correct types and order, and hand each record's text to the full-text backends.

Implements: extract_text, classify_page (rapidocr, tuned; see engine.py and classify.py),
find_text (the OCR lines' boxes, for the viewer's marks),
pages_captured (queues OCR), record_work, register_task_handlers (``pageindex.ocr``), register_routes,
register_nav, register_permissions, register_commands,
audit_action_labels.
Calls: extract_text, classify_page, index_record.
"""

from __future__ import annotations

from pathlib import Path

from bingan.hooks import hookimpl
from bingan.hooks.types import (
    NavItem, PageImage, PageRef, PermissionInfo, PluginInfo, Runtime, TextBlock,
)

from bingan_pageindex.settings import PageindexSettings

HERE = Path(__file__).parent

PLUGIN = PluginInfo(
    name="pageindex", version="0.1.0", hooks_api="1.1", settings=PageindexSettings,
    templates=HERE / "templates", static=HERE / "static",
    migrations=HERE / "migrations" / "versions", title="页面索引",
)


@hookimpl
def register_routes():
    from bingan_pageindex.web import ROUTES

    return ROUTES


@hookimpl
def register_nav():
    return [NavItem("页面索引校正", "/pageindex", "pageindex.correct", "数字化", 30)]


@hookimpl
def register_permissions():
    return [PermissionInfo("pageindex.correct", "页面索引校正（设置页面类型、调整页序、查看页面缩略图）",
                           default_roles=("records", "clerk"))]


@hookimpl
def register_commands(cli):
    from bingan_pageindex.cli import pageindex

    cli.add_command(pageindex)


@hookimpl
def register_task_handlers():
    from bingan_pageindex.service import KIND, ocr_task

    return {KIND: ocr_task}


@hookimpl
def pages_captured(admission, page_ids, rt):
    """Queue OCR for the new pages (committed by the caller before this hook)."""
    if not rt.settings(PageindexSettings).auto_ocr or not page_ids:
        return
    from sqlalchemy import select

    from bingan.core.models import Page
    from bingan_pageindex.service import enqueue_pages

    with rt.sessions() as s, s.begin():
        pages = list(s.scalars(select(Page).where(Page.id.in_(list(page_ids)))))
        enqueue_pages(s, rt, pages)


@hookimpl
def extract_text(image: PageImage, page: PageRef, rt: Runtime) -> list[TextBlock]:
    """Our tuned rapidocr pipeline (one engine per process)."""
    from bingan_pageindex.engine import get_engine
    from bingan_pageindex.service import last_engine

    engine = get_engine(rt.settings(PageindexSettings).ocr_params())
    result = engine.read(image)
    last_engine.set(engine.label)
    return result.blocks


@hookimpl
def classify_page(blocks, page, page_types, rt):
    """Title-band matching against the configured types (names plus aliases)."""
    from bingan_pageindex.classify import classify
    from bingan_pageindex.service import page_geometry

    if not page_types:
        return None
    cfg = rt.settings(PageindexSettings)
    aliases = {t.name: t.aliases for t in cfg.page_types}
    types = {name: aliases.get(name, []) for name in page_types}
    other = cfg.other_type if cfg.other_type in types else page_types[-1]
    size = page_geometry.get()
    return classify(list(blocks), size[1] if size else None, types, other_type=other,
                    band=cfg.title_band)


@hookimpl
def find_text(page, query, rt):
    """Boxes of the query's matches from the lines OCR found on this very image."""
    from sqlalchemy import select

    from bingan.core.cjk_text import text_boxes
    from bingan_pageindex.models import PageText

    if not page.image_sha256:
        return None
    with rt.sessions() as s:
        blocks = s.scalar(select(PageText.blocks).where(
            PageText.page_id == page.id, PageText.image_sha256 == page.image_sha256))
    if blocks is None:
        return None
    return text_boxes([(str(b[0]), (int(b[1]), int(b[2]), int(b[3]), int(b[4])))
                       for b in blocks], query)


@hookimpl
def record_work(session, admission) -> list[str]:
    """``pageindex`` while the record's page index awaits correction."""
    from bingan_pageindex.models import RecordState

    state = session.get(RecordState, admission.id)
    return ["pageindex"] if state is not None and state.status == "needs_correction" else []


@hookimpl
def audit_action_labels() -> dict[str, str]:
    """Audit actions of pageindex, named for the audit pages."""
    return {
        "pageindex.run": "提交页面文字识别",
        "pageindex.reindex": "重建全文索引",
        "pageindex.list": "查看待校对病案列表",
        "pageindex.view": "查看页面识别结果",
        "pageindex.image": "校对时查看页面图像",
        "pageindex.correct": "校对页面类型与顺序",
        "pageindex.api.view": "经接口读取页面识别结果",
        "pageindex.denied": "查看不在校正中的病案",
    }

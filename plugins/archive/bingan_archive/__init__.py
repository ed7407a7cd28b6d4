"""bingan archive plugin: one PDF/A per admission, digitization status, catalog, exports,
BagIt exchange (D3, D4, D5, D10, D11). Logic lives in the modules; these are the hooks."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from bingan.hooks import hookimpl
from bingan.hooks.types import JobSpec, NavItem, PermissionInfo, PluginInfo, RecordLink
from bingan_archive.settings import ArchiveSettings

HERE = Path(__file__).parent

PLUGIN = PluginInfo(name="archive", version="0.1.0", hooks_api="1.1", settings=ArchiveSettings,
                    depends_on=("capture",),
                    templates=HERE / "templates", migrations=HERE / "migrations" / "versions",
                    title="归档与导出")


@hookimpl
def register_routes():
    from bingan_archive.web import ROUTES

    return ROUTES


@hookimpl
def register_nav():
    return [NavItem("归档与导出", "/archive", "records.manage", "数字化", 300)]


@hookimpl
def record_links(record):
    """The record's archive page (its PDF versions, build status) for readers who may download."""
    if "archive.download" not in record.staff.permissions:
        return []
    no = quote(record.admission.admission_no, safe="")
    return [RecordLink("归档文件（PDF）", f"/archive/records/{no}", 30,
                       "数字化病案的归档 PDF 及其版本")]


@hookimpl
def register_permissions():
    return [PermissionInfo("archive.download", "下载病案 PDF", default_roles=("records",)),
            PermissionInfo("archive.export", "批量导出病案（文件夹、离线包、交换包）",
                           default_roles=("records",))]


@hookimpl
def register_commands(cli):
    from bingan_archive.cli import archive

    cli.add_command(archive)


@hookimpl
def register_task_handlers():
    from bingan_archive import jobs

    return {jobs.BUILD: jobs.handle_build, jobs.EXPORT: jobs.handle_export}


@hookimpl
def register_jobs():
    from bingan_archive import jobs

    return [JobSpec("archive.sweep", jobs.sweep, "interval", {"minutes": 5},
                    "为页面有变动但未重新生成 PDF 的病案排队生成")]


@hookimpl
def pages_captured(admission, page_ids, rt):
    """Queue a PDF build for the captured pages. When a page index (``classify_page``) is
    enabled, the build waits for its ``index_record`` call instead, so the first PDF already
    has its bookmarks. Needs the caller to have committed the pages (own transaction)."""
    from bingan_archive import jobs

    if not rt.settings(ArchiveSettings).auto_build:
        return
    if rt.pm.hook.classify_page.get_hookimpls():
        return
    with rt.sessions() as s, s.begin():
        jobs.enqueue_build(s, rt, admission.id, ["captured", sorted(page_ids)])


@hookimpl
def index_record(admission, pages, rt):
    """The page index changed (OCR, classification, correction): rebuild so the bookmarks
    follow the page types."""
    from bingan_archive import jobs

    if not rt.settings(ArchiveSettings).auto_build:
        return
    sig = ["indexed", [(p.id, p.page_type) for p, _text in pages]]
    with rt.sessions() as s, s.begin():
        jobs.enqueue_build(s, rt, admission.id, sig)


@hookimpl
def digitization_blockers_changed(session, admission, rt):
    """A reason that blocks (or blocked) the digitized status changed (rework opened or
    closed): queue a re-evaluation in the caller's transaction, so it runs after the commit."""
    import uuid

    from bingan_archive import jobs

    if not rt.settings(ArchiveSettings).auto_build:
        return
    # every change needs its own evaluation: a state seen before may come back
    jobs.enqueue_build(session, rt, admission.id, ["blockers", uuid.uuid4().hex])


@hookimpl
def audit_action_labels() -> dict[str, str]:
    """Audit actions of archive, named for the audit pages."""
    return {
        "archive.record.view": "查看病案归档文件",
        "archive.build.request": "重新生成病案PDF",
        "archive.download": "下载病案PDF",
        "archive.export.request": "提交病案导出任务",
        "archive.export": "导出病案",
        "archive.export.download": "下载导出的病案",
        "archive.import": "导入病案数据包",
    }

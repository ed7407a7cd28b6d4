"""bingan search plugin: simple, combined and batch search of records (M3-M5), the full-text
tab (backend behind ``search_fulltext``), exports, JSON API and ``bingan search``.

Hook implementations only; the work is in the modules (query, results, batch, service, web,
api, cli, index).
"""

from __future__ import annotations

from pathlib import Path

from bingan.hooks import hookimpl
from bingan.hooks.types import JobSpec, NavItem, PermissionInfo, PluginInfo

from bingan_search import index as _index
from bingan_search.settings import SearchSettings

_HERE = Path(__file__).parent

PLUGIN = PluginInfo(
    name="search",
    version="0.1.0",
    hooks_api="1.1",
    settings=SearchSettings,
    templates=_HERE / "templates",
    static=_HERE / "static",
    migrations=_HERE / "migrations" / "versions",
    title="病案检索",
)

USE = "search.use"
EXPORT = "search.export"


@hookimpl
def register_permissions():
    return [PermissionInfo(USE, "病案检索（简单、组合、批量、全文）"),
            PermissionInfo(EXPORT, "导出检索结果（Excel/CSV）")]


@hookimpl
def register_nav():
    return [NavItem("病案检索", "/search", USE, "病案", 20)]


@hookimpl
def register_routes():
    from bingan_search.api import ROUTES as API
    from bingan_search.web import ROUTES as PAGES

    return [*PAGES, *API]


@hookimpl
def register_commands(cli):
    from bingan_search.cli import search_group

    cli.add_command(search_group)


@hookimpl
def register_jobs():
    return [JobSpec("search-reindex", _index.nightly_reindex, "cron", {"hour": 2, "minute": 40},
                    "补齐检索用的姓名拼音键与诊断/手术名称词表")]


@hookimpl
def admission_upserted(session, admission, created):
    """Keep the pinyin keys of the patient's name and the diagnosis/operation name terms
    current, in the caller's transaction."""
    _index.on_admission_upserted(session, admission.id, admission.patient_name)


@hookimpl
def demo_loaded(admissions, rt):
    """Let the demo's record-room staff and physicians search (roles are data: in a real
    hospital the administrator grants ``search.use`` on the role page)."""
    from bingan_search.demo import grant_demo_roles

    grant_demo_roles(rt)


@hookimpl
def audit_action_labels() -> dict[str, str]:
    """Audit actions of search, named for the audit pages."""
    return {
        "search.simple": "简单检索",
        "search.combined": "组合检索",
        "search.batch": "批量检索",
        "search.fulltext": "全文检索",
        "search.export": "导出检索结果",
        "search.saved.save": "保存检索条件",
        "search.saved.delete": "删除已存检索条件",
        "search.reindex": "重建检索索引",
    }

"""bingan reports plugin (REQUIREMENTS M13): one page for every report the enabled plugins
register through ``register_reports`` (hooks/specs.py), by area, with the period and
department filters, an ECharts chart, the table with its totals row and an Excel export; and
a dashboard per role (我的工作台) built from the same registry.

Hookimpls only; the logic lives in registry (collect, check, run, totals, workbook) and web.
"""

from __future__ import annotations

from pathlib import Path

from bingan.hooks import hookimpl
from bingan.hooks.types import NavItem, PermissionInfo, PluginInfo

HERE = Path(__file__).parent

PLUGIN = PluginInfo(
    name="reports", version="0.1.0", hooks_api="1.1", templates=HERE / "templates",
    static=HERE / "static", title="统计报表",
)


@hookimpl
def register_routes():
    from bingan_reports.web import ROUTES

    return list(ROUTES)


@hookimpl
def register_nav():
    return [
        NavItem("我的工作台", "/reports/dashboard", None, "统计报表", 90),
        NavItem("统计报表", "/reports", "reports.view", "统计报表", 91),
    ]


@hookimpl
def register_permissions():
    return [PermissionInfo("reports.view", "查看统计报表（各报表另需其本身的权限）",
                           default_roles=("records", "clerk", "qc", "auditor"))]


@hookimpl
def audit_action_labels():
    return {"reports.export": "导出统计报表"}

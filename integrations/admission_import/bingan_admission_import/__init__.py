"""bingan admission import: front-page files (卫统4-1 layout) from the command line and the
record room's web page, and the clerk's form for one admission (REQUIREMENTS M2).

Every row and every form goes through ``core.intake``. The demo hospital's admissions are fed
through this path too: ``bingan demo load`` writes them to a front-page file and imports it.
"""

from __future__ import annotations

from pathlib import Path

from bingan.hooks import hookimpl
from bingan.hooks.types import NavItem, PluginInfo

from bingan_admission_import.settings import ImportSettings

HERE = Path(__file__).parent

PLUGIN = PluginInfo(
    name="admission_import", version="0.1.0", hooks_api="1.0", settings=ImportSettings,
    templates=HERE / "templates", migrations=HERE / "migrations" / "versions",
    title="病案首页导入与登记",
)


@hookimpl
def register_commands(cli):
    from bingan_admission_import.cli import records_group

    cli.add_command(records_group)


@hookimpl
def register_routes():
    from bingan_admission_import.web import ROUTES

    return list(ROUTES)


@hookimpl
def register_nav():
    return [
        NavItem("首页文件导入", "/admissions/import", "records.manage", "病案登记", 30),
        NavItem("手工登记住院", "/admissions/new", "records.manage", "病案登记", 31),
    ]


@hookimpl
def audit_action_labels():
    return {"admission_import.run": "导入病案首页文件",
            "admission_import.dry_run": "校验病案首页文件"}


@hookimpl
def demo_admissions(session, admissions, rt):
    """The demo's admissions as a hospital's front-page export, imported like one."""
    from bingan_admission_import.demo import feed

    return feed(rt, session, admissions)

"""bingan deathcase plugin (REQUIREMENTS X1): the records of patients who died (离院方式 5) or
left against medical advice (4), exported per 国卫办医政函〔2024〕96号 — labels, the charge list
merged, one PDF per record in the configured order and file naming, a manifest and a zip per
batch, and who exported and uploaded what.

Hookimpls only; the logic lives in service (selection, order, charge list, export), pdfs
(labels, cover, charge list pages, assembly), web, stats and demo.
"""

from __future__ import annotations

from pathlib import Path

from bingan.hooks import hookimpl
from bingan.hooks.types import NavItem, PermissionInfo, PluginInfo

from bingan_deathcase import hookspecs
from bingan_deathcase.settings import DeathcaseSettings

HERE = Path(__file__).parent

PLUGIN = PluginInfo(
    name="deathcase", version="0.1.0", hooks_api="1.1", settings=DeathcaseSettings,
    templates=HERE / "templates", static=HERE / "static",
    migrations=HERE / "migrations" / "versions", title="死亡及非医嘱离院病历",
    hookspecs=hookspecs,
)


@hookimpl
def register_routes():
    from bingan_deathcase.web import ROUTES

    return list(ROUTES)


@hookimpl
def register_nav():
    return [
        NavItem("死亡/非医嘱离院病历", "/deathcase", "deathcase.manage", "死亡病例上报", 60),
        NavItem("导出批次", "/deathcase/batches", "deathcase.manage", "死亡病例上报", 61),
    ]


@hookimpl
def register_permissions():
    return [PermissionInfo("deathcase.manage",
                           "死亡及非医嘱离院病历：制作标签、合并收费清单、导出、登记上传",
                           default_roles=("records",))]


@hookimpl
def audit_action_labels():
    return {
        "deathcase.labels": "制作死亡/非医嘱离院病历标签",
        "deathcase.charges": "合并收费清单",
        "deathcase.export": "导出死亡/非医嘱离院病历",
        "deathcase.download": "下载死亡/非医嘱离院病历导出包",
        "deathcase.upload": "登记死亡/非医嘱离院病历已上传",
    }


@hookimpl
def register_reports():
    from bingan_deathcase.stats import report_specs

    return report_specs()


@hookimpl
def demo_loaded(admissions, rt) -> None:
    from bingan_deathcase.demo import load

    load(admissions, rt)

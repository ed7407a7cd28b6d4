"""bingan tracking plugin: where every paper record is in the record room's flow (示踪, T1).

The hospital names its own states, transitions per role and automatic moves in settings
(``bingan_tracking.settings``); other plugins report what happened to a paper record through
core's ``paper_record_event`` hook and tracking moves the record as the settings say. Hookimpls
only; the logic lives in service, the pages in web.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from bingan.hooks import hookimpl
from bingan.hooks.types import NavItem, PermissionInfo, PluginInfo, RecordLink

from bingan_tracking.settings import TrackingSettings

HERE = Path(__file__).parent

PLUGIN = PluginInfo(
    name="tracking", version="0.1.0", hooks_api="1.1", settings=TrackingSettings,
    templates=HERE / "templates", static=HERE / "static",
    migrations=HERE / "migrations" / "versions", title="病案示踪",
)


@hookimpl
def register_routes():
    from bingan_tracking.web import ROUTES

    return list(ROUTES)


@hookimpl
def register_nav():
    return [
        NavItem("示踪看板", "/tracking", "tracking.view", "病案示踪", 50),
        NavItem("扫码流转", "/tracking/move", "tracking.move", "病案示踪", 51),
        NavItem("病案流转记录", "/tracking/record", "tracking.view", "病案示踪", 52),
        NavItem("示踪状态配置", "/tracking/settings", "admin.plugins", "系统管理", 935),
    ]


@hookimpl
def register_permissions():
    return [
        PermissionInfo("tracking.view", "查看病案示踪看板、各状态病案与流转记录",
                       default_roles=("records", "clerk", "qc")),
        PermissionInfo("tracking.move", "扫码流转病案状态（按流转规则及角色）",
                       default_roles=("records", "clerk", "qc")),
    ]


@hookimpl
def audit_action_labels():
    return {
        "tracking.move": "流转病案状态",
        "tracking.timeline": "查看病案流转记录",
        "tracking.list": "查看某状态的病案",
    }


@hookimpl
def paper_record_event(session, admission, event, rt) -> None:
    """Move the record as the settings' automatic rule for this event says."""
    from bingan_tracking.service import on_event

    on_event(session, rt, admission, event)


@hookimpl
def record_links(record, session, rt):
    """On the record page: the paper record's timeline."""
    if "tracking.view" not in record.staff.permissions or not record.admission.barcode:
        return []
    return [RecordLink("纸质病案流转记录", "/tracking/record?code=" + quote(record.admission.barcode),
                       order=61, title="这份纸质病案在病案室的每一次流转")]


@hookimpl
def demo_loaded(admissions, rt) -> None:
    from bingan_tracking.demo import load_demo

    load_demo(rt, admissions)

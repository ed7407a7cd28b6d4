"""bingan booking plugin: online copy booking for patients through the hospital's WeChat
official account (REQUIREMENTS B1-B3).

Hookimpls only; the logic lives in patients (WeChat sign-in, sessions, phone codes), service
(records, photos, bookings, review), pay (WeChat Pay with the callback checks), sms, courier,
reports, and the pages in web_h5 (patients, /h5) and web_admin (back office, /booking).
"""

from __future__ import annotations

from pathlib import Path

from bingan.hooks import hookimpl
from bingan.hooks.types import JobSpec, NavItem, PermissionInfo, PluginInfo, Runtime

from bingan_booking import hookspecs
from bingan_booking.settings import BookingSettings

HERE = Path(__file__).parent

PLUGIN = PluginInfo(
    name="booking", version="0.1.0", hooks_api="1.1", settings=BookingSettings,
    templates=HERE / "templates", static=HERE / "static",
    migrations=HERE / "migrations" / "versions", title="网上预约复印", hookspecs=hookspecs,
)


@hookimpl
def register_routes():
    from bingan_booking.web_admin import ROUTES as ADMIN
    from bingan_booking.web_h5 import ROUTES as H5

    return [*H5, *ADMIN]


@hookimpl
def register_nav():
    return [
        NavItem("预约列表", "/booking", "booking.review", "网上预约", 60),
        NavItem("预约报表", "/booking/reports", "booking.reports", "网上预约", 61),
        NavItem("短信记录", "/booking/sms", "booking.review", "网上预约", 62),
    ]


@hookimpl
def register_permissions():
    return [
        PermissionInfo("booking.review", "网上预约：查看、审核、寄出与办结",
                       default_roles=("records",)),
        PermissionInfo("booking.identity", "查看网上预约申请人的证件照片",
                       default_roles=("records",)),
        PermissionInfo("booking.reports", "网上预约日报、月报与导出", default_roles=("records",)),
    ]


@hookimpl
def audit_action_labels():
    return {
        "booking.lookup": "网上预约查找本人病案",
        "booking.create": "提交网上复印预约",
        "booking.paid": "网上预约支付成功",
        "booking.pay_refused": "拒绝支付通知（签名、时间窗、金额或重复）",
        "booking.refund": "网上预约退款",
        "booking.refund_result": "网上预约退款结果（成功、异常或关闭）",
        "booking.photos_purge": "删除保存期满的网上预约证件照片",
        "booking.sms_resend": "重新发送网上预约短信",
        "booking.approve": "网上预约审核通过",
        "booking.reject": "网上预约审核不通过",
        "booking.ship": "网上预约复印件寄出",
        "booking.done": "网上预约办结",
        "booking.identity_view": "查看网上预约证件照片",
        "booking.export": "导出网上预约报表",
        "booking.track": "查询网上预约物流",
    }


def close_unpaid(rt: Runtime) -> int:
    """Scheduled: apply lost payment notifications (order query), close unpaid orders."""
    from bingan_booking.pay import close_stale

    return close_stale(rt)


def refund_query(rt: Runtime) -> dict[str, int]:
    """Scheduled: ask WeChat Pay about refunds still PROCESSING until each is final."""
    from bingan_booking.pay import sync_refunds

    return sync_refunds(rt)


def purge_photos(rt: Runtime) -> int:
    """Scheduled: delete the photos of finished bookings whose retention has passed."""
    from bingan_booking.service import purge_photos as purge

    return purge(rt)


@hookimpl
def register_jobs():
    return [JobSpec("booking.close_unpaid", close_unpaid, "interval", {"minutes": 5},
                    "网上预约：补查支付结果、关闭超时未支付的预约"),
            JobSpec("booking.refund_query", refund_query, "interval", {"minutes": 10},
                    "网上预约：查询处理中的退款，直到成功、异常或关闭"),
            JobSpec("booking.photo_purge", purge_photos, "cron", {"hour": 2, "minute": 50},
                    "网上预约：删除保存期满的证件照片（已办结、未通过或已关闭的预约）")]


@hookimpl
def register_reports():
    """网上预约 on the reports page (the registry of the reports plugin), with its Excel."""
    from bingan_booking.reports import report_specs

    return report_specs()


# Built-in providers, registered like anyone else's (trylast: another plugin's wins).


@hookimpl(trylast=True)
def booking_sms_gateway(name, rt):
    from bingan_booking import sms

    return sms.builtin_gateway(name, rt)


@hookimpl(trylast=True)
def booking_pay_gateway(name, rt):
    from bingan_booking import pay

    return pay.builtin_gateway(name, rt)


@hookimpl(trylast=True)
def booking_oauth_gateway(name, rt):
    from bingan_booking import patients

    if name == "sandbox":
        return patients.SandboxOAuth(rt)
    if name == "wechat":
        return patients.WeChatOAuth(rt.settings(BookingSettings).wechat)
    return None


@hookimpl(trylast=True)
def booking_courier_gateway(name, rt):
    from bingan_booking import courier

    return courier.builtin_gateway(name, rt)


@hookimpl
def demo_loaded(admissions, rt):
    from bingan_booking.demo import load

    load(rt, admissions)

"""SMS: one ``send`` for every message, behind the ``booking_sms_gateway`` hook, with the
per-phone limits (one per ``per_phone_seconds``, ``per_phone_day`` a day by the hospital's
clock) counted in the log, under a per-phone lock so two requests at once cannot both pass.

Providers: Aliyun (dysmsapi 2017-05-25 SDK), Tencent Cloud (sms 2021-01-11 SDK) and the
sandbox, which keeps the messages in its own outbox (the phone of the demo and the tests).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass

from sqlalchemy import func, select, text as sql_text
from sqlalchemy.orm import Session

from bingan.core.models import utcnow

from bingan_booking.hookspecs import SmsResult
from bingan_booking.models import BookingSms
from bingan_booking.settings import BookingSettings, Sms

PHONE = re.compile(r"1[3-9]\d{9}")


class SmsRefused(ValueError):
    """The SMS is not sent (rate limit, bad number, no provider); the message says why."""


def check_phone(phone: str) -> str:
    p = (phone or "").strip()
    if not PHONE.fullmatch(p):
        raise SmsRefused("请输入 11 位手机号码")
    return p


def _lock_phone(session: Session, phone: str) -> None:
    """Serialise senders to one phone: PostgreSQL advisory lock for the transaction (SQLite
    writers are already serialised by BEGIN IMMEDIATE)."""
    if session.get_bind().dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(b"booking-sms:" + phone.encode()).digest()[:8],
                             "big", signed=True)
        session.execute(sql_text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


def check_limits(session: Session, rt, conf: Sms, phone: str,
                 now: dt.datetime | None = None, interval: bool = True) -> None:
    """One message per ``per_phone_seconds`` (when ``interval``: the ones a patient asks
    for) and ``per_phone_day`` a day (all), counting what the provider took."""
    now = now or utcnow()
    last = session.scalar(select(func.max(BookingSms.created_at)).where(
        BookingSms.phone == phone, BookingSms.ok.is_(True)))
    if interval and last is not None and \
            (now - last).total_seconds() < conf.per_phone_seconds:
        wait = conf.per_phone_seconds - int((now - last).total_seconds())
        raise SmsRefused(f"发送太频繁，请 {wait} 秒后再试")
    local = now.astimezone(rt.tz)
    day_start = local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(dt.timezone.utc)
    today = session.scalar(select(func.count()).select_from(BookingSms).where(
        BookingSms.phone == phone, BookingSms.ok.is_(True), BookingSms.created_at >= day_start))
    if (today or 0) >= conf.per_phone_day:
        raise SmsRefused(f"该号码今日短信已达 {conf.per_phone_day} 条上限，请明天再试")


def gateway(rt, conf: Sms):
    gw = rt.pm.hook.booking_sms_gateway(name=conf.provider, rt=rt)
    if gw is None:
        raise SmsRefused(f"未找到短信服务 {conf.provider}")
    return gw


def send(session: Session, rt, phone: str, kind: str, params: dict[str, str], text: str,
         log_text: str | None = None, booking_id: int | None = None,
         now: dt.datetime | None = None, interval: bool | None = None) -> BookingSms:
    """Send one message of ``kind`` (a template in settings ``sms.templates``) within the
    limits (check_limits), in the caller's transaction; the log row says whether the provider took it.
    Raises SmsRefused when a limit stops it (nothing sent, nothing logged as sent)."""
    conf = rt.settings(BookingSettings).sms
    phone = check_phone(phone)
    template = conf.templates.get(kind)
    if not template:
        raise SmsRefused(f"未配置短信模板 {kind}")
    _lock_phone(session, phone)
    # the interval stops a patient (or a script) asking codes in a loop; the record room's
    # notices count towards the day's cap only, so a review right after a code still arrives;
    # a notice the record room sends again by hand keeps both limits (``interval``)
    check_limits(session, rt, conf, phone, now, interval=kind == "code" if interval is None
                 else interval)
    gw = gateway(rt, conf)
    try:
        res = gw.send(phone, template, params, text)
    except Exception as exc:  # noqa: BLE001 - a provider's SDK error is the message's failure
        res = SmsResult(ok=False, error=f"{exc.__class__.__name__}: {str(exc)[:300]}")
    row = BookingSms(phone=phone, kind=kind, provider=gw.name, text=log_text or text,
                     ok=res.ok, provider_ref=res.provider_ref or None,
                     error=res.error or None, booking_id=booking_id,
                     created_at=now or utcnow())
    session.add(row)
    session.flush()
    return row


# --------------------------------------------------------------------------------------------
# Providers
# --------------------------------------------------------------------------------------------


@dataclass
class SandboxSmsGateway:
    """The sandbox's phone network: messages are appended to an outbox file under
    BINGAN_HOME/sandbox (not our database: a provider is outside our transaction), which the
    demo's phone page and the tests read."""

    home: str
    sign_name: str
    name: str = "sandbox"

    def send(self, phone: str, template: str, params: dict[str, str], text: str) -> SmsResult:
        import fcntl
        import os
        import uuid

        path = outbox_path(self.home)
        path.parent.mkdir(parents=True, exist_ok=True)
        ref = "sandbox-" + uuid.uuid4().hex[:12]
        line = json.dumps({"ref": ref, "phone": phone, "template": template, "params": params,
                           "text": f"【{self.sign_name}】{text}",
                           "at": utcnow().isoformat()}, ensure_ascii=False) + "\n"
        with open(path, "a", encoding="utf-8") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        return SmsResult(ok=True, provider_ref=ref)


def outbox_path(home):
    from pathlib import Path

    return Path(home) / "sandbox" / "sms-outbox.jsonl"


def sandbox_outbox(rt, phones: set[str], limit: int = 20) -> list[dict]:
    """The newest messages the sandbox delivered to ``phones``."""
    path = outbox_path(rt.home)
    if not path.exists():
        return []
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                m = json.loads(line)
            except ValueError:
                continue
            if m.get("phone") in phones:
                out.append(m)
    return out[::-1][:limit]


@dataclass
class AliyunSmsGateway:
    """Aliyun SMS (dysmsapi 2017-05-25): SendSms with the template's JSON parameters."""

    conf: Sms
    name: str = "aliyun"

    def send(self, phone: str, template: str, params: dict[str, str], text: str) -> SmsResult:
        from alibabacloud_dysmsapi20170525 import models as sms_models
        from alibabacloud_dysmsapi20170525.client import Client
        from alibabacloud_tea_openapi import models as open_models

        if not (self.conf.access_key_id and self.conf.access_key_secret):
            return SmsResult(ok=False, error="未配置阿里云短信 AccessKey")
        scheme, host = _endpoint(self.conf.endpoint, "dysmsapi.aliyuncs.com")
        client = Client(open_models.Config(access_key_id=self.conf.access_key_id,
                                           access_key_secret=self.conf.access_key_secret,
                                           endpoint=host, protocol=scheme))
        resp = client.send_sms(sms_models.SendSmsRequest(
            phone_numbers=phone, sign_name=self.conf.sign_name, template_code=template,
            template_param=json.dumps(params, ensure_ascii=False)))
        body = resp.body
        if body.code == "OK":
            return SmsResult(ok=True, provider_ref=body.biz_id or "")
        return SmsResult(ok=False, error=f"{body.code}: {body.message}")


@dataclass
class TencentSmsGateway:
    """Tencent Cloud SMS (2021-01-11): SendSms with the template's ordered parameters."""

    conf: Sms
    name: str = "tencent"

    def send(self, phone: str, template: str, params: dict[str, str], text: str) -> SmsResult:
        from tencentcloud.common import credential
        from tencentcloud.sms.v20210111 import models, sms_client

        if not (self.conf.access_key_id and self.conf.access_key_secret and self.conf.sdk_app_id):
            return SmsResult(ok=False, error="未配置腾讯云短信 SecretId/SecretKey/SdkAppId")
        from tencentcloud.common.profile.client_profile import ClientProfile
        from tencentcloud.common.profile.http_profile import HttpProfile

        scheme, host = _endpoint(self.conf.endpoint, "sms.tencentcloudapi.com")
        client = sms_client.SmsClient(
            credential.Credential(self.conf.access_key_id, self.conf.access_key_secret),
            self.conf.region, ClientProfile(httpProfile=HttpProfile(protocol=scheme,
                                                                    endpoint=host)))
        req = models.SendSmsRequest()
        req.PhoneNumberSet = [f"+86{phone}"]
        req.SmsSdkAppId = self.conf.sdk_app_id
        req.SignName = self.conf.sign_name
        req.TemplateId = template
        req.TemplateParamSet = [str(v) for v in params.values()]
        resp = client.SendSms(req)
        status = resp.SendStatusSet[0] if resp.SendStatusSet else None
        if status is not None and status.Code == "Ok":
            return SmsResult(ok=True, provider_ref=status.SerialNo or "")
        return SmsResult(ok=False, error=f"{getattr(status, 'Code', '')}: "
                                         f"{getattr(status, 'Message', '无返回')}")


def _endpoint(value: str, default: str) -> tuple[str, str]:
    """(scheme, host[:port]) of a configured endpoint ("https://..." or a bare host)."""
    if not value:
        return "https", default
    scheme, sep, rest = value.partition("://")
    return (scheme, rest.rstrip("/")) if sep else ("https", value.rstrip("/"))


def builtin_gateway(name: str, rt):
    conf = rt.settings(BookingSettings).sms
    if name == "sandbox":
        return SandboxSmsGateway(str(rt.home), conf.sign_name)
    if name == "aliyun":
        return AliyunSmsGateway(conf)
    if name == "tencent":
        return TencentSmsGateway(conf)
    return None

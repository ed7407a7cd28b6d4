"""Courier tracking: a small client of Kuaidi100's real-time query API (there is no maintained
SDK) and its sandbox.

Kuaidi100 (``poll/query.do``): a form POST of ``customer``, ``param`` (JSON: com, num,
phone, resultv2) and ``sign`` = upper-case MD5 of ``param + key + customer``. The answer
has ``state`` (0 在途, 1 揽收, 2 疑难, 3 签收, 4 退签, 5 派件, 6 退回, 7 转投, 8 清关, 14 拒签)
and ``data`` (newest first: ftime, context, location); an error has ``result: false`` and
``returnCode``/``message``.

The sandbox speaks the same protocol through the same client (signature checked with its own
key) and answers from the booking's dispatch time, so the demo shows a parcel moving.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Callable

import requests
from sqlalchemy import select

from bingan_booking.hookspecs import TrackEvent, Tracking
from bingan_booking.settings import BookingSettings

URL = "https://poll.kuaidi100.com/poll/query.do"
STATES = {"0": "运输中", "1": "已揽收", "2": "疑难件", "3": "已签收", "4": "退签", "5": "派件中",
          "6": "退回", "7": "转投", "8": "清关", "14": "拒签"}
COMPANIES = {"shunfeng": "顺丰速运", "ems": "EMS", "youzhengguonei": "邮政快递包裹",
             "zhongtong": "中通快递", "yuantong": "圆通速递", "jd": "京东物流"}


class TrackingError(RuntimeError):
    """No tracking (bad number, provider error); the message is for staff and patients."""


def sign(param: str, key: str, customer: str) -> str:
    return hashlib.md5((param + key + customer).encode()).hexdigest().upper()


Transport = Callable[[str, dict[str, str]], dict[str, Any]]


def _http(url: str, form: dict[str, str]) -> dict[str, Any]:
    r = requests.post(url, data=form, timeout=10)
    try:
        return r.json()
    except ValueError as exc:
        raise TrackingError(f"快递查询服务返回了无法识别的内容（{r.status_code}）") from exc


@dataclass
class Kuaidi100:
    customer: str
    key: str
    transport: Transport = _http
    name: str = "kuaidi100"

    def track(self, company: str, number: str, phone: str = "") -> Tracking:
        if not (self.customer and self.key):
            raise TrackingError("未配置快递100 customer/key")
        param = json.dumps({"com": company, "num": number, "phone": phone[-4:] if phone else "",
                            "resultv2": "4", "show": "0", "order": "desc"},
                           ensure_ascii=False, separators=(",", ":"))
        ans = self.transport(URL, {"customer": self.customer, "param": param,
                                   "sign": sign(param, self.key, self.customer)})
        if ans.get("result") is False or str(ans.get("status", "200")) != "200":
            raise TrackingError(f"快递查询失败：{ans.get('message') or ans.get('returnCode')}")
        state = str(ans.get("state", ""))
        events = [TrackEvent(at=str(e.get("ftime") or e.get("time") or ""),
                             where=str(e.get("location") or e.get("areaName") or ""),
                             text=str(e.get("context", ""))) for e in ans.get("data") or []]
        return Tracking(company=COMPANIES.get(company, company), number=number,
                        state=STATES.get(state, "运输中"), delivered=state == "3",
                        events=events)


class SandboxTransport:
    """Kuaidi100's side for the sandbox: checks the signature, answers from the booking
    dispatched with that number."""

    CUSTOMER = "SANDBOXCUSTOMER01"

    def __init__(self, rt) -> None:
        self.rt = rt
        self.key = hashlib.sha256(b"kuaidi100-sandbox:" + rt.secret_key).hexdigest()[:32]

    def __call__(self, url: str, form: dict[str, str]) -> dict[str, Any]:
        from bingan_booking.models import Booking

        if form.get("sign") != sign(form.get("param", ""), self.key, form.get("customer", "")) \
                or form.get("customer") != self.CUSTOMER:
            return {"result": False, "returnCode": "601", "message": "签名错误"}
        p = json.loads(form["param"])
        with self.rt.sessions() as s:
            shipped = s.scalar(select(Booking.shipped_at).where(Booking.tracking_no == p["num"]))
        if shipped is None:
            return {"result": False, "returnCode": "500", "message": "查询无结果，请隔段时间再查"}
        steps = [(0, "1", "[发件网点] 快件已被顺丰揽收", "病案室"),
                 (2, "0", "快件在【本市转运中心】完成分拣，准备发往目的地", "本市转运中心"),
                 (14, "0", "快件到达【目的地营业点】", "目的地营业点"),
                 (20, "5", "快件交给快递员，正在派送途中", "目的地营业点"),
                 (26, "3", "快件已签收，签收人：本人", "收件地址")]
        now = dt.datetime.now(dt.timezone.utc)
        tz = self.rt.tz
        done = [st for st in steps if shipped + dt.timedelta(hours=st[0]) <= now] or steps[:1]
        data = [{"ftime": (shipped + dt.timedelta(hours=h)).astimezone(tz).strftime(
            "%Y-%m-%d %H:%M:%S"), "context": c, "location": loc} for h, _, c, loc in done]
        data.reverse()
        return {"message": "ok", "status": "200", "state": done[-1][1], "ischeck":
                "1" if done[-1][1] == "3" else "0", "com": p["com"], "nu": p["num"],
                "data": data}


def builtin_gateway(name: str, rt):
    conf = rt.settings(BookingSettings).courier
    if name == "sandbox":
        t = SandboxTransport(rt)
        return Kuaidi100(SandboxTransport.CUSTOMER, t.key, t, name="sandbox")
    if name == "kuaidi100":
        return Kuaidi100(conf.customer, conf.key)
    return None


def gateway(rt):
    name = rt.settings(BookingSettings).courier.provider
    gw = rt.pm.hook.booking_courier_gateway(name=name, rt=rt)
    if gw is None:
        raise TrackingError(f"未找到快递查询服务 {name}")
    return gw

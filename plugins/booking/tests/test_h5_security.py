"""The internet-facing part: upload abuse, CSRF, CSP, no enumeration, rate limits (B3).
Every refusal is a clear message and leaves nothing written."""

from __future__ import annotations

import datetime as dt
import io
import struct
import zlib

from PIL import Image
from sqlalchemy import func, select

from bingan.core.models import Blob

from bingan_booking import sms
from bingan_booking.models import Booking, BookingSms
from bingan_booking.settings import BookingSettings
from booking_world import APPLICANT_PHONE, book, csrf, jpeg, sign_in, verify_phone
from webutil import web_client


def _png_bomb(w=30000, h=30000) -> bytes:
    """A PNG that claims 900 megapixels in a few hundred bytes."""
    raw = zlib.compress(b"\x00" * 64)

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", raw) + chunk(b"IEND", b""))


def _gif() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (800, 600)).save(buf, "GIF")
    return buf.getvalue()


CORPUS = {
    "empty": (b"", "请上传"),
    "html": (b"<html><script>alert(1)</script></html>", "不是可识别的图片"),
    "svg": (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "不是可识别的图片"),
    "pdf": (b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF", "不是可识别的图片"),
    "truncated": (jpeg()[:400], "不是可识别的图片"),
    "bomb": (_png_bomb(), "像素过多"),
    "gif": (_gif(), "只接受"),
    "tiny": (jpeg((120, 90)), "太小"),
    "huge": (b"\xff\xd8\xff" + b"0" * (8 * 1024 * 1024 + 10), "过大"),
}


def _counts(rt):
    with rt.sessions() as s:
        return (s.scalar(select(func.count()).select_from(Booking)),
                s.scalar(select(func.count()).select_from(Blob)))


def test_upload_abuse_corpus_is_refused_with_nothing_written(rt, world):
    with web_client(rt) as c:
        sign_in(c)
        verify_phone(c, rt)
        before = _counts(rt)
        for name, (data, why) in CORPUS.items():
            data_ = {"_csrf_token": csrf(c), "h": "main", "name": "李秀英",
                     "id_number": "110101198003070028", "purpose": "insurance", "copies": "1",
                     "applicant_kind": "self", "applicant_name": "李秀英", "delivery": "pickup",
                     "consent": "1", "adm": ["ZY202605000201"]}
            r = c.post("/h5/book", data=data_,
                       files=[("holding_id", (f"{name}.jpg", data, "image/jpeg"))],
                       follow_redirects=False)
            assert r.status_code == 400, (name, r.status_code)
            assert why in r.text, (name, why)
        # a photo field the form does not have, and a booking of another patient's stay
        r = c.post("/h5/book", data={"_csrf_token": csrf(c), "h": "main", "name": "李秀英",
                                     "id_number": "110101198003070028", "purpose": "insurance",
                                     "copies": "1", "applicant_kind": "self",
                                     "applicant_name": "李秀英", "delivery": "pickup",
                                     "consent": "1", "adm": ["ZY202606000301"]},
                   files=[("holding_id", ("a.jpg", jpeg(), "image/jpeg"))])
        assert r.status_code == 400 and "未找到可预约" in r.text
        r = book(c, copies="99")
        assert r.status_code == 400 and "份数" in r.text
        assert _counts(rt) == before


def test_csrf_csp_and_no_enumeration(rt, world):
    with web_client(rt) as c:
        sign_in(c)
        verify_phone(c, rt)
        r = c.get("/h5/book")
        csp = r.headers["content-security-policy"]
        assert "script-src 'self';" in csp and "unsafe" not in csp
        assert "frame-ancestors 'none'" in csp and r.headers["cache-control"] == "no-store"
        # no token, or another session's token: refused; every cookie the site set is HttpOnly
        r = c.post("/h5/book/lookup", data={"h": "main", "name": "李秀英"})
        assert r.status_code == 403 and "页面已过期" in r.text
        mine = csrf(c)
        assert "bingan_csrf" not in c.cookies
        pid = book(c).headers["location"].split("/")[3]
        assert len(pid) >= 24
        # every form of the site (the signed pay callback aside) refuses a POST without this
        # session's token (wapiti found /check taking one without its token)
        from bingan_booking.web_h5 import ROUTES

        posts = sorted(r.path for r in ROUTES[0].routes
                       if "POST" in getattr(r, "methods", ()) and not r.path.endswith("/notify"))
        assert "/h5/b/{pid:str}/check" in posts and len(posts) >= 6, posts
        for path in posts:
            url = path.replace("{pid:str}", pid)
            for data in ({}, {"_csrf_token": "0" * 40}):
                r = c.post(url, data=data, follow_redirects=False)
                assert r.status_code == 403 and "页面已过期" in r.text, (url, r.status_code)
    with web_client(rt) as other:
        sign_in(other)
        verify_phone(other, rt, "13600000000")
        r = other.post("/h5/book/lookup", data={"_csrf_token": mine, "h": "main"})
        assert r.status_code == 403
        assert other.get(f"/h5/b/{pid}").status_code == 404
        assert other.get(f"/h5/b/{pid}/pay").status_code == 404
        assert other.get("/h5/b/" + "A" * 24).status_code == 404
        r = other.post(f"/h5/b/{pid}/check", data={"_csrf_token": csrf(other)})
        assert r.status_code == 404
    with web_client(rt) as anon:
        # no session: every page goes to the sign-in, the notify route takes only signed posts
        r = anon.get(f"/h5/b/{pid}", follow_redirects=False)
        assert r.headers["location"].startswith("/h5/signin")
        assert anon.post("/h5/pay/notify", content=b"{}").status_code == 401


def test_lookup_limit_and_no_hint_which_part_is_wrong(rt, world):
    limit = rt.settings(BookingSettings).lookups_per_hour
    with web_client(rt) as c:
        sign_in(c)
        verify_phone(c, rt)
        texts = []
        for i in range(limit):
            r = c.post("/h5/book/lookup", data={"_csrf_token": csrf(c), "h": "main",
                                                "name": "李秀英" if i % 2 else "张三",
                                                "id_number": "110101198003070029"})
            texts.append(r.text.split('role="alert">')[1].split("<")[0])
        assert len(set(texts)) == 1 and "未找到" in texts[0]  # the same answer either way
        r = c.post("/h5/book/lookup", data={"_csrf_token": csrf(c), "h": "main",
                                            "name": "李秀英", "id_number": "110101198003070028"})
        assert r.status_code == 400 and "查询次数过多" in r.text


def test_sms_limits_per_phone(rt, world):
    t0 = dt.datetime(2026, 12, 7, 1, 0, tzinfo=dt.timezone.utc)  # 09:00 in Beijing
    conf = rt.settings(BookingSettings).sms
    with rt.sessions() as s, s.begin():
        sms.send(s, rt, APPLICANT_PHONE, "code", {"code": "1"}, "1", now=t0)
    with rt.sessions() as s, s.begin():
        try:
            sms.send(s, rt, APPLICANT_PHONE, "code", {"code": "2"}, "2",
                     now=t0 + dt.timedelta(seconds=59))
            raise AssertionError("a second code within 60 s was sent")
        except sms.SmsRefused as exc:
            assert "秒后再试" in str(exc)
    for i in range(1, conf.per_phone_day):
        with rt.sessions() as s, s.begin():
            sms.send(s, rt, APPLICANT_PHONE, "code", {"code": str(i)}, "x",
                     now=t0 + dt.timedelta(minutes=2 * i))
    with rt.sessions() as s, s.begin():
        try:
            sms.send(s, rt, APPLICANT_PHONE, "approved", {}, "x", now=t0 + dt.timedelta(hours=5))
            raise AssertionError("an eleventh message in a day was sent")
        except sms.SmsRefused as exc:
            assert "上限" in str(exc)
    # the next day (hospital clock) the count starts again
    with rt.sessions() as s, s.begin():
        assert sms.send(s, rt, APPLICANT_PHONE, "code", {"code": "9"}, "x",
                        now=t0 + dt.timedelta(hours=16)).ok
        assert s.scalar(select(func.count()).select_from(BookingSms)) == conf.per_phone_day + 1
    with rt.sessions() as s, s.begin():
        try:
            sms.send(s, rt, "12345", "code", {}, "x")
            raise AssertionError("a bad number was accepted")
        except sms.SmsRefused as exc:
            assert "11 位" in str(exc)


def test_posts_per_client_address_are_limited(rt, world):
    POSTS_PER_MINUTE = rt.settings(BookingSettings).posts_per_minute
    with web_client(rt) as c:
        sign_in(c)
        codes = [c.post("/h5/phone/code", data={"_csrf_token": csrf(c), "phone": "1"}).status_code
                 for _ in range(POSTS_PER_MINUTE + 1)]
        assert codes[:POSTS_PER_MINUTE] == [400] * POSTS_PER_MINUTE  # a bad number, answered
        assert codes[-1] == 429
        c.peer_app.peer = "127.0.0.2"  # another address is not held back
        assert c.post("/h5/phone/code", data={"_csrf_token": csrf(c), "phone": "1"}
                      ).status_code == 400


def test_over_https_every_cookie_is_secure_and_httponly(rt, world):
    with web_client(rt, https=True) as c:
        r = c.get("/h5", follow_redirects=False)
        seen = []
        for _ in range(5):  # /h5 -> signin -> sandbox authorize -> oauth -> /h5
            seen += r.headers.get_list("set-cookie")
            if r.status_code not in (302, 303, 307):
                break
            r = c.get(r.headers["location"], follow_redirects=False)
        assert r.status_code == 200, r.text
        names = {h.split("=", 1)[0] for h in seen}
        assert {"bingan_booking", "bingan_booking_oauth", "bingan_booking_sandbox_device"} <= names
        for h in seen:
            low = h.lower()
            assert "; secure" in low and "; httponly" in low, h
        assert r.headers["strict-transport-security"].startswith("max-age=")

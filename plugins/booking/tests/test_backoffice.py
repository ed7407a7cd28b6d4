"""The back office beyond review: the photos' retention (the purge job, audited) and
重新发送短信 within the phone's SMS limits (one per 60 s, ten a day)."""

from __future__ import annotations

import datetime as dt
import json
import types
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import func, select, update

from bingan.core import audit
from bingan.core.models import AuditEvent, Blob

from bingan_booking import sandbox_pay, service
from bingan_booking.models import Booking, BookingDocument, BookingSms
from bingan_booking.settings import BookingSettings
from booking_world import APPLICANT_PHONE, book, sign_in, verify_phone
from test_flow import _booking, _pay
from webutil import login, web_client

UTC = dt.timezone.utc
REVIEWER = types.SimpleNamespace(staff_no="REC1", name="周病案")
ACT = audit.Actor(staff_no="REC1")


def _bookings(rt, n: int, paid: int) -> list[str]:
    with web_client(rt) as c:
        sign_in(c)
        verify_phone(c, rt)
        pids = [book(c).headers["location"].split("/")[3] for _ in range(n)]
        for pid in pids[:paid]:
            _pay(c, rt, pid)
    return pids


def _err(r) -> str:
    return parse_qs(urlsplit(r.headers["location"]).query).get("err", [""])[0]


def test_photos_are_purged_after_the_retention(rt, world):
    """Done, rejected and closed bookings lose their photos ``photo_retention_days`` after
    they ended (rows, blob rows and files; audited once); a booking still open, or ended
    more recently, keeps them."""
    done, rejected, recent, pending, closed = _bookings(rt, 5, paid=4)
    sandbox_pay.platform(rt).refund_settle_seconds = 3600
    with rt.sessions() as s, s.begin():
        for pid in (done, recent):
            bk = s.scalar(select(Booking).where(Booking.public_id == pid))
            service.approve(s, rt, bk, REVIEWER, ACT)
            service.finish(s, rt, bk, ACT)
    service.reject_and_refund(rt, _booking(rt, rejected).booking_no, REVIEWER, ACT, "照片不清晰")
    days = rt.settings(BookingSettings).photo_retention_days
    now = dt.datetime.now(UTC)
    old = now - dt.timedelta(days=days, hours=1)
    with rt.sessions() as s, s.begin():
        rows = {b.public_id: b for b in s.scalars(select(Booking))}
        rows[done].done_at = old
        rows[rejected].reviewed_at = old
        rows[recent].done_at = now - dt.timedelta(days=days - 1)
        rows[pending].created_at = old  # paid, waiting for review: never purged
        rows[closed].status, rows[closed].pay_status = "closed", "closed"
        rows[closed].created_at = old
        shas = {pid: [d.blob_sha256 for d in rows[pid].documents] for pid in rows}
    assert all(len(v) == 1 for v in shas.values())
    assert all(rt.store.exists(v[0]) for v in shas.values())
    gone = [shas[p][0] for p in (done, rejected, closed)]
    kept = [shas[p][0] for p in (recent, pending)]
    assert service.purge_photos(rt, now) == 3
    with rt.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Blob).where(Blob.sha256.in_(gone))) == 0
        assert s.scalar(select(func.count()).select_from(Blob).where(Blob.sha256.in_(kept))) == 2
        left = {d.booking_id for d in s.scalars(select(BookingDocument))}
        purged = {b.public_id for b in s.scalars(select(Booking).where(
            Booking.photos_purged_at.is_not(None)))}
        events = [json.loads(e.detail) for e in s.scalars(select(AuditEvent).where(
            AuditEvent.action == "booking.photos_purge"))]
    assert purged == {done, rejected, closed}
    assert len(left) == 2
    assert sorted(e["status"] for e in events) == ["closed", "done", "rejected"]
    assert all(e["documents"] == ["holding_id"] for e in events)
    assert not any(rt.store.exists(sha) for sha in gone)
    assert all(rt.store.exists(sha) for sha in kept)
    # the second run finds nothing; the page says what happened, the photo is gone
    assert service.purge_photos(rt, now) == 0
    with web_client(rt) as staff:
        login(staff, "REC1")
        no = _booking(rt, done).booking_no
        assert "按保存期限删除" in staff.get(f"/booking/b/{no}").text
        assert "/photo/" in staff.get(f"/booking/b/{_booking(rt, recent).booking_no}").text


def test_resend_sms_keeps_the_phone_limits(rt, world):
    (pid,) = _bookings(rt, 1, paid=1)
    no = _booking(rt, pid).booking_no
    with web_client(rt) as staff:
        login(staff, "REC1")
        tok = staff.cookies.get("bingan_csrf")
        # nothing to resend before the review
        r = staff.post(f"/booking/b/{no}/resend", data={"_csrf_token": tok},
                       follow_redirects=False)
        assert "尚未审核" in _err(r)
        staff.post(f"/booking/b/{no}/approve", data={"_csrf_token": tok})
        page = staff.get(f"/booking/b/{no}").text
        assert "重新发送短信" in page and "60 秒内只能发送一条" in page
        # the approval's SMS went out a moment ago: one per 60 s
        r = staff.post(f"/booking/b/{no}/resend", data={"_csrf_token": tok},
                       follow_redirects=False)
        err = _err(r)
        assert err.startswith("未重新发送：发送太频繁，请") and "秒后再试" in err, err
        assert err in staff.get(r.headers["location"]).text
    # on a known day: the code and the approval at 10:00 Beijing, resends a minute apart
    t0 = dt.datetime(2026, 12, 3, 2, 0, tzinfo=UTC)
    with rt.sessions() as s, s.begin():
        s.execute(update(BookingSms).where(BookingSms.phone == APPLICANT_PHONE)
                  .values(created_at=t0))
        assert s.scalar(select(func.count()).select_from(BookingSms).where(
            BookingSms.phone == APPLICANT_PHONE, BookingSms.ok.is_(True))) == 2
    day = rt.settings(BookingSettings).sms.per_phone_day
    for i in range(1, day - 1):
        with rt.sessions() as s, s.begin():
            bk = s.scalar(select(Booking).where(Booking.booking_no == no))
            assert service.resend(s, rt, bk, ACT, now=t0 + dt.timedelta(seconds=61 * i)) == \
                "短信已重新发送"
    with rt.sessions() as s, s.begin():
        bk = s.scalar(select(Booking).where(Booking.booking_no == no))
        try:
            service.resend(s, rt, bk, ACT, now=t0 + dt.timedelta(hours=3))
            raise AssertionError("the eleventh message of the day was sent")
        except service.ReviewError as exc:
            assert "今日短信已达 10 条上限" in str(exc), exc
    with rt.sessions() as s:
        sent = s.scalars(select(BookingSms).where(BookingSms.booking_id == _booking(rt, pid).id)
                         .order_by(BookingSms.id)).all()
        assert [m.kind for m in sent] == ["approved"] * (day - 1)
        assert len({m.text for m in sent}) == 1 and "已审核通过" in sent[0].text
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "booking.sms_resend")) == day - 2
    # the next day the phone may receive again
    with rt.sessions() as s, s.begin():
        bk = s.scalar(select(Booking).where(Booking.booking_no == no))
        assert service.resend(s, rt, bk, ACT, now=t0 + dt.timedelta(days=1)) == "短信已重新发送"

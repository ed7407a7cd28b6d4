"""Identity images: encrypted at rest (the blob on disk is not the JPEG and no JPEG is in it),
the key outside the database, the plain image served only to holders of copying.identity
(a physician and a clerk are refused, each try audited), purged after the retention."""

from __future__ import annotations

import base64
import datetime as dt

from sqlalchemy import select, table, text, update

from bingan.core import audit
from bingan.core.models import AuditEvent, Blob, utcnow

from bingan_copying import identity, service
from bingan_copying.models import CopyRequest, IdentityDocument
from copy_world import A1, PASSWORD, id_card_jpeg
from webutil import login, web_client
from bingan_copying.settings import CopyingSettings

CARD = id_card_jpeg("330102197001020011")


def _register(world) -> str:
    rt = world.rt
    with rt.sessions() as s, s.begin():
        return service.register(s, rt, world.staff("REC1"), audit.Actor(staff_no="REC1"),
                                service.RequestIn(
                                    applicant_type="patient", applicant_name="王小明",
                                    purpose="insurance", admission_nos=[A1],
                                    page_ids=world.page_ids(A1)[:2], consent=True,
                                    documents=[service.DocumentIn("patient_id", "webcam", CARD)])
                                ).request_no


def _doc(rt, no):
    with rt.sessions() as s:
        req = service.get_request(s, no)
        d = req.documents[0]
        s.expunge_all()
        return d


def test_blob_on_disk_is_ciphertext_key_outside_database(world):
    rt = world.rt
    no = _register(world)
    doc = _doc(rt, no)
    raw = rt.store.path(doc.blob_sha256).read_bytes()
    assert raw[:3] != b"\xff\xd8\xff"          # not a JPEG
    assert CARD[200:264] not in raw            # no plain run of the image inside
    assert raw.startswith(identity.MAGIC) and len(raw) >= len(CARD) + 16
    assert doc.media_type == "image/jpeg" and doc.source == "webcam"
    key = identity.load_key(rt, rt.settings(CopyingSettings))
    assert identity.decrypt(key, raw) == CARD
    key_file = rt.home / "keys" / "copying.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    with rt.sessions() as s:  # the key is nowhere in the database
        for name in ("copy_identity_document", "copy_request", "blob"):
            for row in s.execute(select(text("*")).select_from(table(name))):
                cells = repr(tuple(row))
                assert base64.b64encode(key).decode() not in cells and key.hex() not in cells
    # altered ciphertext does not decrypt
    bad = raw[:-1] + bytes([raw[-1] ^ 1])
    try:
        identity.decrypt(key, bad)
    except identity.IdentityError:
        pass
    else:
        raise AssertionError("altered ciphertext decrypted")


def _get(rt, staff_no, url):
    with web_client(rt) as c:
        r = login(c, staff_no, PASSWORD)
        assert r.status_code in (302, 303), r.text
        return c.get(url)


def test_image_served_only_with_capability(world):
    rt = world.rt
    no = _register(world)
    doc = _doc(rt, no)
    url = f"/copying/requests/{no}/documents/{doc.id}"
    r = _get(rt, "REC1", url)
    assert r.status_code == 200 and r.content == CARD
    assert r.headers["content-type"].startswith("image/jpeg")
    assert "no-store" in r.headers["cache-control"]
    for who in ("PHY1", "CLK1"):
        r = _get(rt, who, url)
        assert r.status_code == 403, who
        assert CARD[:64] not in r.content
    with rt.sessions() as s:
        ev = list(s.scalars(select(AuditEvent).where(
            AuditEvent.action == "copying.identity_view").order_by(AuditEvent.seq)))
        assert [(e.staff_no, e.outcome) for e in ev] == [
            ("REC1", "ok"), ("PHY1", "denied"), ("CLK1", "denied")]
    # the physician cannot open the request at all, nor find it in the lists
    assert _get(rt, "PHY1", f"/copying/requests/{no}").status_code == 403
    assert _get(rt, "PHY1", "/copying").status_code == 403


def test_purge_after_retention(world):
    rt = world.rt
    no = _register(world)
    doc = _doc(rt, no)
    path = rt.store.path(doc.blob_sha256)
    assert path.exists()
    assert identity.purge(rt, rt.settings(CopyingSettings)) == 0  # not due yet
    with rt.sessions() as s, s.begin():
        s.execute(update(CopyRequest).values(identity_until=utcnow() - dt.timedelta(seconds=1)))
    assert identity.purge(rt, rt.settings(CopyingSettings)) == 1
    assert not path.exists()
    with rt.sessions() as s:
        d = s.get(IdentityDocument, doc.id)
        assert d.blob_sha256 is None and d.purged_at is not None
        assert s.get(Blob, doc.blob_sha256) is None
        assert service.get_request(s, no).identity_purged_at is not None
    r = _get(rt, "REC1", f"/copying/requests/{no}/documents/{doc.id}")
    assert r.status_code == 410
    assert identity.purge(rt, rt.settings(CopyingSettings)) == 0


def test_purge_job_is_registered(world):
    jobs = [j for group in world.rt.pm.hook.register_jobs(rt=world.rt) for j in group or []]
    job = next(j for j in jobs if j.id == "copying.identity_purge")
    assert job.func(world.rt) == 0


def test_scanner_hands_back_a_checked_image(world):
    rt = world.rt
    with web_client(rt) as c:
        login(c, "REC1", PASSWORD)
        from webutil import csrf_token

        r = c.post("/copying/scan", headers={"x-csrftoken": csrf_token(c)})
        assert r.status_code == 502 and "未配置扫描仪" in r.text
        rt.settings(CopyingSettings).scanner_device = "test"  # SANE's test backend
        r = c.post("/copying/scan", headers={"x-csrftoken": csrf_token(c)})
        assert r.status_code == 200, r.text
        assert r.content[:8] == b"\x89PNG\r\n\x1a\n" and "no-store" in r.headers["cache-control"]
        rt.settings(CopyingSettings).scanner_device = "no-such-device"
        r = c.post("/copying/scan", headers={"x-csrftoken": csrf_token(c)})
        assert r.status_code == 502 and "扫描失败" in r.text
    with web_client(rt) as c:
        login(c, "PHY1", PASSWORD)
        from webutil import csrf_token

        assert c.post("/copying/scan", headers={"x-csrftoken": csrf_token(c)}).status_code == 403

"""The phone page: the camera input, its source and menu entry, and a photo uploaded from it
going through capture (unidentified without a record; into the record when one is typed)."""

from __future__ import annotations

import io

from sqlalchemy import select

from bingan.core import tasks
from bingan.hooks import hookimpl
from bingan.core.models import Role
from bingan.core.pages import current_pages
from bingan_capture.ingest import TASK_KIND
from bingan_capture.models import CaptureFile
from webutil import csrf_token, login, make_staff, nav_labels, web_client


def _upload(c, data: bytes, name: str, **fields):
    return c.post("/api/capture/upload", files={"file": (name, data, "application/octet-stream")},
                  data=fields, headers={"x-csrftoken": csrf_token(c), "accept": "application/json"})


def test_source_is_listed(rt):
    srcs = {s.name: s for g in rt.pm.hook.capture_sources(rt=rt) for s in g}
    assert srcs["phone"].device == "camera" and srcs["phone"].href == "/scan-phone"


def _clerk(rt) -> None:
    make_staff(rt, "R0001", ["clerk"])
    with rt.sessions() as s, s.begin():
        role = s.scalar(select(Role).where(Role.name == "clerk"))
        role.permissions = sorted(set(role.permissions or []) | {"capture.operate"})


def test_phone_page_and_upload(rt, cap, two_records):
    a, _ = two_records
    _clerk(rt)
    make_staff(rt, "D0001", ["physician"])
    with web_client(rt) as c, web_client(rt) as doc:
        assert login(c, "R0001").status_code in (302, 303)
        r = c.get("/scan-phone", params={"admission": a.admission_no})
        assert r.status_code == 200 and 'capture="environment"' in r.text
        assert 'data-source="phone"' in r.text and a.admission_no in r.text
        assert "手机拍摄" in nav_labels(c.get("/capture").text)  # the page itself is full-screen
        assert "/static/scan-phone/phone.css" in r.text
        assert c.get("/static/scan-phone/phone.css").status_code == 200
        photo = cap.encode(cap.page_image("照片", seed=4), "JPEG")
        r = _upload(c, photo, "IMG_0001.jpg", source="phone", admission=a.admission_no)
        assert r.status_code == 201, r.text
        assert tasks.run_until_idle(rt, kinds=[TASK_KIND]) == 1
        with rt.sessions() as s:
            assert s.scalar(select(CaptureFile.source)) == "phone"
            assert len(current_pages(s, a.id)) == 1
        # a physician holds no capture.operate: no page, no menu entry
        assert login(doc, "D0001").status_code in (302, 303)
        assert doc.get("/scan-phone").status_code == 403
        assert "手机拍摄" not in nav_labels(doc.get("/").text)


def _blurred_photo() -> bytes:
    """A phone photo of a sheet on a dark desk, out of focus (the tests' QC fails it)."""
    from PIL import Image, ImageDraw, ImageFilter

    im = Image.new("RGB", (900, 1200), (55, 60, 70))
    d = ImageDraw.Draw(im)
    d.rectangle((150, 180, 750, 1030), fill=(238, 236, 230))
    for y in range(240, 960, 26):
        d.rectangle((200, y, 200 + (y * 37) % 420 + 60, y + 10), fill=(30, 30, 30))
    im = im.filter(ImageFilter.GaussianBlur(6))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def test_phone_photo_verdict_reasons_and_retake(rt, cap, two_records):
    a, _b = two_records
    _clerk(rt)
    with web_client(rt) as c:
        assert login(c, "R0001").status_code in (302, 303)
        r = c.get("/scan-phone")
        assert "纸张四角都在画面内" in r.text and "重拍" in r.text
        r = _upload(c, _blurred_photo(), "IMG_0100.jpg", admission=a.admission_no,
                    source="phone")
        assert r.status_code == 201, r.text
        cid = r.json()["capture_id"]
        tasks.run_until_idle(rt, kinds=[TASK_KIND])
        frame = c.get(f"/api/capture/captures/{cid}").json()["frames"][0]
        assert frame["status"] == "stored" and frame["qc_status"] == "fail"
        assert frame["reasons"] == ["图像模糊"]  # what the page's QC said, for the phone
        assert frame["rework_id"]
        # the retake replaces the failed page
        r = c.post(f"/capture/rework/{frame['rework_id']}/upload",
                   files={"file": ("IMG_0101.jpg", _blurred_photo()[:-2] + b"\xff\xd9",
                                   "application/octet-stream")},
                   data={"source": "phone"}, headers={"x-csrftoken": csrf_token(c)})
        assert r.status_code in (200, 302, 303), r.text
        tasks.run_until_idle(rt, kinds=[TASK_KIND])
        with rt.sessions() as s:
            pages = current_pages(s, a.id)
            assert len(pages) == 1 and pages[0].id != frame["page_id"]


class _PaperSeen:
    """Records the paper each process_page call was given and lets the next answer."""

    def __init__(self) -> None:
        self.papers: list[str | None] = []

    @hookimpl
    def process_page(self, data, source, dpi, paper):
        self.papers.append(paper)


def test_paper_chosen_on_the_phone_reaches_the_page_cleanup(rt, cap, two_records):
    a, _b = two_records
    _clerk(rt)
    seen = _PaperSeen()
    rt.pm.register(seen, name="paper-seen")  # registered last: called first, answers None
    try:
        with web_client(rt) as c:
            assert login(c, "R0001").status_code in (302, 303)
            r = c.get("/scan-phone")
            assert 'name="paper"' in r.text and 'value="A5"' in r.text and 'value="16K"' in r.text
            before = cap.counts(rt)
            r = _upload(c, cap.encode(cap.page_image("照片", seed=5), "JPEG"), "IMG_0200.jpg",
                        source="phone", admission=a.admission_no, paper="A3")
            assert r.status_code == 400 and "未知的纸张" in r.text
            assert cap.counts(rt) == before  # refused: nothing stored
            for seed, paper in ((6, "A5"), (7, "auto"), (8, "16K")):
                r = _upload(c, cap.encode(cap.page_image("照片", seed=seed), "JPEG"),
                            f"IMG_02{seed}.jpg", source="phone", admission=a.admission_no,
                            paper=paper)
                assert r.status_code == 201, r.text
            assert tasks.run_until_idle(rt, kinds=[TASK_KIND]) == 3
        with rt.sessions() as s:
            kept = list(s.scalars(select(CaptureFile.paper).order_by(CaptureFile.id)))
        assert kept == ["A5", None, "16K"]
        assert sorted(seen.papers, key=str) == sorted(["A5", None, "16K"], key=str)
    finally:
        rt.pm.unregister(name="paper-seen")

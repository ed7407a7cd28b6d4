"""补单: registered only against a recovered record (what, sheets, from which ward, when, who);
captured through the capture plugin they make the record's next version in the archive, and
the supplement says which version it is in. Runs with capture, archive and this plugin only
(the page index would make the archive wait for OCR)."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageDraw
from sqlalchemy import select

from bingan.core import tasks
from bingan.core.models import AuditEvent, Document

from bingan_capture.ingest import receive
from bingan_recovery import service
from bingan_recovery.models import Supplement
from bingan_recovery.service import RecoveryError
from ward_world import PASSWORD, RECORDS, build_world
from webutil import csrf_token, login, web_client

PLUGINS = ["capture", "archive", "recovery"]


def _runtime(home, db_url):
    from support import build_test_runtime

    return build_test_runtime(home, db_url, enabled=PLUGINS)


@pytest.fixture(scope="session")
def sup_templates(tmp_path_factory):
    from fixtures_db import migrated_templates

    yield from migrated_templates(tmp_path_factory.mktemp("rc_tpl"), _runtime, "bingan_rctpl")


@pytest.fixture(params=["sqlite", "postgresql"])
def sup_world(request, sup_templates, tmp_path):
    from fixtures_db import database_copy

    from bingan.core.runtime import set_current

    for url in database_copy(sup_templates, request.param, tmp_path, "bingan_rc"):
        rt = _runtime(tmp_path / "home", url)
        try:
            yield build_world(rt)
        finally:
            rt.close()
            set_current(None)


def _pdf(pages: list[str]) -> bytes:
    imgs = []
    for i, t in enumerate(pages):
        im = Image.new("RGB", (1240, 1754), (250, 250, 246))
        d = ImageDraw.Draw(im)
        d.rectangle((300, 80, 940, 140), fill=(30, 30, 30))
        for y in range(220, 1600, 60):
            d.line((120, y, 120 + (y * 7 + i * 131) % 900 + 100, y), fill=(20, 20, 20), width=4)
        d.text((130, 180), t, fill=(0, 0, 0))
        imgs.append(im)
    buf = io.BytesIO()
    imgs[0].save(buf, "PDF", resolution=150.0, save_all=True, append_images=imgs[1:])
    return buf.getvalue()


def _capture(rt, no: str, pages: list[str], name: str) -> None:
    with rt.sessions() as s, s.begin():
        receive(s, rt, _pdf(pages), name, "upload", admission_no=no, by="REC1")
    tasks.run_until_idle(rt)


def _versions(rt, adm_id: int) -> list[int]:
    with rt.sessions() as s:
        return list(s.scalars(select(Document.version).where(Document.admission_id == adm_id)
                              .order_by(Document.version)))


def test_supplement_makes_a_new_version_after_capture(sup_world):
    rt = sup_world.rt
    r = sup_world.rec(RECORDS[0].admission_no)
    with rt.sessions() as s, s.begin():
        # not recovered yet: refused, nothing written
        with pytest.raises(RecoveryError, match="尚未回收"):
            service.register_supplement(s, rt, r.barcode, "检验报告", 1, "心内一病区", "",
                                        by="REC1")
        assert service.recover(s, rt, r.barcode, staff_no="REC1", source="room").ok
    _capture(rt, r.admission_no, ["病案首页", "出院记录"], "first.pdf")
    assert _versions(rt, r.id) == [1]
    with web_client(rt) as c:
        login(c, "REC1", PASSWORD)
        tok = csrf_token(c)
        res = c.post("/recovery/supplements", data={"_csrf_token": tok, "barcode": r.barcode,
                                                     "kind": "检验报告", "sheets": "1",
                                                     "from_ward": "心内一病区",
                                                     "description": "术后病理回报"})
        assert res.status_code == 200 and "已登记" in res.text and "待采集" in res.text
        res = c.post("/recovery/supplements", data={"_csrf_token": tok, "barcode": r.barcode,
                                                     "kind": "检验报告", "sheets": "0",
                                                     "from_ward": "心内一病区"})
        assert res.status_code == 400 and "张数" in res.text
    with rt.sessions() as s:
        sups = s.scalars(select(Supplement)).all()
        assert [(x.kind, x.sheets, x.from_ward, x.registered_by, x.status) for x in sups] == [
            ("检验报告", 1, "心内一病区", "REC1", "waiting")]
    # the supplement is captured like any page of the record: the archive makes version 2
    _capture(rt, r.admission_no, ["病理报告"], "supplement.pdf")
    assert _versions(rt, r.id) == [1, 2]
    with rt.sessions() as s:
        sup = s.scalar(select(Supplement))
        assert (sup.status, sup.document_version) == ("archived", 2)
        assert sup.captured_at is not None
        doc2 = s.scalar(select(Document).where(Document.admission_id == r.id,
                                               Document.version == 2))
        assert doc2.page_count == 3
        assert s.scalar(select(AuditEvent).where(AuditEvent.action == "recovery.supplement"))
    with web_client(rt) as c:
        login(c, "REC1", PASSWORD)
        assert "已归档（新版本）（第 2 版）" in c.get("/recovery/supplements").text

"""The record room: a scan recovers the record and gives its 50 x 30 mm label, whose Code 128
(rendered at 300 DPI) zxing-cpp reads back as the record barcode, with the CJK font embedded;
the live list shows each recovery; labels through a CUPS-like ``lp``; bad scans refused."""

from __future__ import annotations

import re
import stat

import pikepdf
import pypdfium2 as pdfium
import zxingcpp
from sqlalchemy import select

from bingan.core.models import AuditEvent

from bingan_recovery import label as labels
from bingan_recovery.models import Recovery
from bingan_recovery.settings import RecoverySettings
from ward_world import PASSWORD, RECORDS
from webutil import csrf_token, login, web_client


def _decode_300dpi(pdf: bytes):
    doc = pdfium.PdfDocument(pdf)
    page = doc[0]
    w, h = page.get_size()  # points
    img = page.render(scale=300 / 72).to_pil()
    return (w, h), img, zxingcpp.read_barcodes(img)


def test_label_pdf_barcode_reads_back_at_300_dpi(world):
    r = world.rec(RECORDS[0].admission_no)
    pdf = labels.label_pdf(labels.LabelData(r.barcode, r.mrn, r.name, r.discharged.date(),
                                            r.admission_no))
    (w, h), img, found = _decode_300dpi(pdf)
    assert abs(w / 72 * 25.4 - 50) < 0.1 and abs(h / 72 * 25.4 - 30) < 0.1
    assert abs(img.size[0] - 591) <= 1 and abs(img.size[1] - 354) <= 1  # 50 x 30 mm, 300 DPI
    assert [(b.format.name, b.text) for b in found] == [("Code128", r.barcode)]
    with pikepdf.open(__import__("io").BytesIO(pdf)) as p:
        fonts = [f for f in p.pages[0].Resources.Font.values()]
        assert fonts and all("/FontFile2" in str(f.get("/DescendantFonts", [{}])[0]
                                                  .get("/FontDescriptor", {}).keys())
                             or "/FontFile3" in str(f.get("/DescendantFonts", [{}])[0]
                                                    .get("/FontDescriptor", {}).keys())
                             for f in fonts), "CJK font not embedded"
    text = pdfium.PdfDocument(pdf)[0].get_textpage().get_text_range()
    assert r.name in text and r.mrn in text and "2026-02-13" in text


def test_room_scan_label_and_live_list(world, tmp_path):
    rt = world.rt
    r = world.rec(RECORDS[2].admission_no)
    with web_client(rt) as c:
        assert login(c, "REC1", PASSWORD).status_code in (302, 303)
        page = c.get("/recovery/room")
        assert page.status_code == 200 and 'hx-get="/recovery/room/live"' in page.text
        assert "every 3s" in page.text and "孙平安" not in page.text
        tok = csrf_token(c)
        res = c.post("/recovery/room/scan", data={"barcode": r.barcode.lower()},
                     headers={"x-csrftoken": tok})
        assert res.status_code == 200 and 'data-outcome="recovered"' in res.text
        m = re.search(r'href="(/recovery/labels/(\d+)/label\.pdf)"', res.text)
        assert m and int(m.group(2)) == r.id
        live = c.get("/recovery/room/live")
        assert "孙平安" in live.text and r.mrn in live.text and "病案室扫码" in live.text
        again = c.post("/recovery/room/scan", data={"barcode": r.barcode},
                       headers={"x-csrftoken": tok})
        assert 'data-outcome="duplicate"' in again.text
        pdf = c.get(m.group(1))
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        assert [b.text for b in _decode_300dpi(pdf.content)[2]] == [r.barcode]
        # bad scans: a misread check character, an unknown record, one still in hospital
        bad = r.barcode[:-1] + ("0" if r.barcode[-1] != "0" else "1")
        res = c.post("/recovery/room/scan", data={"barcode": bad}, headers={"x-csrftoken": tok})
        assert res.status_code == 400 and 'data-outcome="invalid"' in res.text
        inpat = world.rec(RECORDS[4].admission_no)
        res = c.post("/recovery/room/scan", data={"barcode": inpat.barcode},
                     headers={"x-csrftoken": tok})
        assert res.status_code == 400 and "尚未出院" in res.text
        # no label printer configured: refused with the reason, nothing marked printed
        res = c.post(f"/recovery/labels/{r.id}/print", headers={"x-csrftoken": tok})
        assert res.status_code == 400 and "未设置标签打印机" in res.text
        assert c.get("/recovery/labels/999999/label.pdf").status_code == 404
    with rt.sessions() as s:
        recs = s.scalars(select(Recovery)).all()
        got = [(x.admission_id, x.source, x.recovered_by) for x in recs]
        assert got == [(r.id, "room", "REC1")]
        assert recs[0].label_printed_at is not None  # the browser label
        acts = [e.action for e in s.scalars(select(AuditEvent).where(
            AuditEvent.action.like("recovery.%")).order_by(AuditEvent.seq))]
    assert acts.count("recovery.recover") == 1 and "recovery.label" in acts


def test_label_through_lp(world, tmp_path, monkeypatch):
    """The label goes to the configured queue through ``lp`` with the PDF on stdin (a stand-in
    ``lp`` on PATH keeps what it was given, as CUPS would spool it)."""
    rt = world.rt
    r = world.rec(RECORDS[3].admission_no)
    spool = tmp_path / "spool.pdf"
    lp = tmp_path / "lp"
    lp.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path}/args\ncat > {spool}\n"
                  "echo 'request id is LABEL-42 (1 file(s))'\n")
    lp.chmod(lp.stat().st_mode | stat.S_IEXEC)
    st = rt.settings(RecoverySettings)
    monkeypatch.setattr(st, "label_printer", "label50x30")
    monkeypatch.setattr(st, "lp_command", str(lp))
    with web_client(rt) as c:
        login(c, "CLK1", PASSWORD)
        tok = csrf_token(c)
        res = c.post("/recovery/room/scan", data={"barcode": r.barcode},
                     headers={"x-csrftoken": tok})
        assert "送标签打印机 label50x30" in res.text
        res = c.post(f"/recovery/labels/{r.id}/print", headers={"x-csrftoken": tok})
        assert res.status_code == 200 and "LABEL-42" in res.text
    args = (tmp_path / "args").read_text()
    assert "-d label50x30" in args and "media=Custom.50x30mm" in args
    assert [b.text for b in _decode_300dpi(spool.read_bytes())[2]] == [r.barcode]

"""BagIt exchange (D11): export, validate, import into another system; damaged bags refused."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import shutil

import bagit
import pytest
from click.testing import CliRunner
from PIL import Image
from sqlalchemy import func, select

from bingan.core import audit, tasks
from bingan.core.models import AuditEvent, Document, Page
from bingan.core.runtime import set_current
from bingan_archive import bag, exporting

UTC = dt.timezone.utc


def _source(w):
    a = w.admission()
    b = w.admission(mrn="00654321", admission_no="ZY202605000003", name="李四",
                    discharged=dt.datetime(2026, 6, 1, 3, 0, tzinfo=UTC))
    w.pages(a, [{"page_type": "病案首页"}, {"page_type": "出院记录", "dpi": 300}])
    w.pages(b, [{"page_type": "病案首页"}, {"qc_status": "warn"}, {"mode": "L"}])
    w.build(a)
    w.build(b)
    return a, b


def _same_admissions(w):
    """The receiving hospital system knows the same admissions (from its HIS), no pages."""
    w.admission()
    w.admission(mrn="00654321", admission_no="ZY202605000003", name="李四",
                discharged=dt.datetime(2026, 6, 1, 3, 0, tzinfo=UTC))


def _counts(rt):
    with rt.sessions() as s:
        return (s.scalar(select(func.count()).select_from(Page)),
                s.scalar(select(func.count()).select_from(Document)))


def _export(w, target):
    set_current(w.rt)
    return exporting.export(w.rt, "bag", target, actor=audit.Actor(staff_no="T01"))


def test_bag_round_trip(world, other_world, tmp_path):
    a, b = _source(world)
    target = tmp_path / "bag"
    res = _export(world, target)
    assert res.records == 2
    b_ = bagit.Bag(str(target))
    assert b_.validate() and b_.version_info == (1, 0)
    assert set(b_.algorithms) == {"sha256", "sha512"}
    assert b_.info["Source-Organization"] == world.rt.config.core.hospital_name
    assert b_.info["Record-Count"] == "2"
    payload = sorted(b_.payload_files())
    assert "data/records.json" in payload and "data/目录清单.csv" in payload
    assert "data/00123456/00123456_1_20260503.pdf" in payload
    assert "data/00654321/00654321_1_20260601/0003.jpg" in payload
    index = json.loads((target / "data/records.json").read_text(encoding="utf-8"))
    assert index["format"] == "bingan-archive-bag" and len(index["records"]) == 2
    src_pages = {}
    with world.rt.sessions() as s:
        for aid in (a, b):
            src_pages[aid] = [world.rt.store.get(p.image_sha256) for p in
                              s.scalars(select(Page).where(Page.admission_id == aid)
                                        .order_by(Page.seq))]
        src_pdf = {d.admission_id: world.rt.store.get(d.blob_sha256)
                   for d in s.scalars(select(Document))}

    # the other system imports it
    _same_admissions(other_world)
    set_current(other_world.rt)
    got = bag.import_bag(other_world.rt, target, actor=audit.Actor(staff_no="IMP"))
    assert (got.records, got.pages, got.documents, got.skipped) == (2, 5, 2, 0)
    with other_world.rt.sessions() as s:
        from bingan.core.models import Admission

        for src_aid, no in ((a, "ZY202605000001"), (b, "ZY202605000003")):
            adm = s.scalar(select(Admission).where(Admission.admission_no == no))
            imported = list(s.scalars(select(Page).where(Page.admission_id == adm.id)
                                      .order_by(Page.seq)))
            assert [other_world.rt.store.get(p.image_sha256) for p in imported] == src_pages[src_aid]
            assert [p.page_type for p in imported][:1] == ["病案首页"]
            doc = s.scalar(select(Document).where(Document.admission_id == adm.id))
            assert other_world.rt.store.get(doc.blob_sha256) == src_pdf[src_aid]
            assert "交换包" in doc.note
    # pages_captured was called: the receiving system builds its own PDF/A and decides status
    assert tasks.run_until_idle(other_world.rt) == 2
    with other_world.rt.sessions() as s:
        from bingan_archive.models import ArchiveRecord

        assert sorted(r.status for r in s.scalars(select(ArchiveRecord))) == ["digitized"] * 2
    assert sorted(other_world.recorder.calls) == [("ZY202605000001", 2), ("ZY202605000003", 2)]

    # importing the same bag again adds nothing
    again = bag.import_bag(other_world.rt, target)
    assert (again.pages, again.documents, again.skipped) == (0, 0, 2)
    with other_world.rt.sessions() as s:
        ev = s.scalars(select(AuditEvent).where(AuditEvent.action == "archive.import")
                       .order_by(AuditEvent.seq)).all()
    assert [e.outcome for e in ev] == ["ok", "ok"] and ev[0].staff_no == "IMP"


def _refused(w, target, *fragments):
    before = _counts(w.rt)
    set_current(w.rt)
    with pytest.raises(bag.BagImportError) as info:
        bag.import_bag(w.rt, target)
    report = info.value.report()
    for f in fragments:
        assert f in report, report
    assert _counts(w.rt) == before  # nothing half-written
    with w.rt.sessions() as s:
        last = s.scalars(select(AuditEvent).where(AuditEvent.action == "archive.import")
                         .order_by(AuditEvent.seq.desc())).first()
    assert last.outcome == "failed"
    return report


def test_damaged_bag_is_refused(world, other_world, tmp_path):
    _source(world)
    target = tmp_path / "bag"
    _export(world, target)
    _same_admissions(other_world)
    victim = target / "data/00654321/00654321_1_20260601/0002.jpg"
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 2] ^= 0x04  # one bit, same size: only the checksums can tell
    victim.write_bytes(bytes(raw))
    report = _refused(other_world, target, "data/00654321/00654321_1_20260601/0002.jpg",
                      "校验值不符")
    assert "00123456_1_20260503.pdf" not in report  # only the bad file is named

    victim.write_bytes(bytes(raw[:-1]))  # and a missing file, an unexpected one
    (target / "data/00123456/00123456_1_20260503.pdf").unlink()
    (target / "data/extra.txt").write_text("x")
    _refused(other_world, target, "00123456_1_20260503.pdf", "缺失", "data/extra.txt")

    shutil.rmtree(target / "data")
    _refused(other_world, target, "BagIt")
    with pytest.raises(bag.BagImportError, match="BagIt"):
        bag.import_bag(other_world.rt, tmp_path)  # not a bag at all


def test_unknown_admission_refused_nothing_written(world, other_world, tmp_path):
    _source(world)
    target = tmp_path / "bag"
    _export(world, target)
    other_world.admission()  # knows only the first admission
    _refused(other_world, target, "住院号 ZY202605000003", "本院没有这个住院号")
    # an admission number that belongs to another patient here is refused as well
    other_world.admission(mrn="00999999", admission_no="ZY202605000003", name="王五")
    _refused(other_world, target, "属于病案号 00999999")


def test_pages_already_different_refused(world, other_world, tmp_path):
    _source(world)
    target = tmp_path / "bag"
    _export(world, target)
    _same_admissions(other_world)
    from bingan.core.models import Admission

    with other_world.rt.sessions() as s:
        aid = s.scalar(select(Admission.id).where(Admission.admission_no == "ZY202605000001"))
    other_world.pages(aid, [{}])
    _refused(other_world, target, "已有 1 页且与交换包不同")


def _rebag(target):
    """Re-write the manifests after a deliberate edit (a bag that is valid as a bag)."""
    b = bagit.Bag(str(target))
    cwd = os.getcwd()
    try:
        b.save(manifests=True)
    finally:
        os.chdir(cwd)


def test_wrong_file_type_in_valid_bag_refused(world, other_world, tmp_path):
    _source(world)
    target = tmp_path / "bag"
    _export(world, target)
    _same_admissions(other_world)
    page = target / "data/00123456/00123456_1_20260503/0001.jpg"
    buf = io.BytesIO()
    Image.new("RGB", (40, 40), "white").save(buf, "PNG")
    page.write_bytes(buf.getvalue())
    pdf = target / "data/00654321/00654321_1_20260601.pdf"
    pdf.write_bytes(pdf.read_bytes()[:500])  # truncated PDF
    index_path = target / "data/records.json"
    index = json.loads(index_path.read_text(encoding="utf-8"))
    for rec in index["records"]:
        for p in rec["pages"]:
            p["sha256"] = hashlib.sha256((target / "data" / p["file"]).read_bytes()).hexdigest()
        rec["pdf_sha256"] = hashlib.sha256((target / "data" / rec["pdf"]).read_bytes()).hexdigest()
    index["records"][0]["pages"][1]["file"] = "../../etc/passwd"
    index_path.write_text(json.dumps(index, ensure_ascii=False), encoding="utf-8")
    _rebag(target)
    assert bagit.Bag(str(target)).is_valid()
    _refused(other_world, target, "0001.jpg：不是 JPEG", "00654321_1_20260601.pdf：不是有效的 PDF",
             "'../../etc/passwd' 不在交换包的清单中")


def test_cli_bag_export_and_import(world, other_world, tmp_path):
    from bingan.core.cli import Ctx, build_cli

    def run(rt, *args):
        set_current(rt)
        obj = Ctx()
        obj._rt = rt
        return CliRunner().invoke(build_cli(rt), list(args), obj=obj)

    _source(world)
    res = run(world.rt, "archive", "bag", "export", str(tmp_path / "bag"))
    assert res.exit_code == 0 and "通过 BagIt 校验" in res.output, res.output
    res = run(world.rt, "archive", "bag", "export", str(tmp_path / "bag"))
    assert res.exit_code == 1 and "不是空文件夹" in res.output
    res = run(other_world.rt, "archive", "bag", "import", str(tmp_path / "bag"))
    assert res.exit_code == 1 and "本院没有这个住院号" in res.output
    _same_admissions(other_world)
    res = run(other_world.rt, "archive", "bag", "import", str(tmp_path / "bag"))
    assert res.exit_code == 0 and "新增 5 页、2 个 PDF" in res.output, res.output

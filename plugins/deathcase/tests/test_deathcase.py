"""Death and against-advice records (X1): the 4/5 selection, the page order by rule, the
charge list merged from an xlsx (and refused when bad, with nothing written), file names,
the manifest's checksums, versions on re-export, the export decision, the upload register."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import zipfile

import openpyxl
import pikepdf
import pypdfium2
import pytest
import xlsxwriter
from sqlalchemy import func, select

from bingan.core import audit
from bingan.core.models import AuditEvent

from bingan_deathcase import service
from bingan_deathcase.models import DeathcaseBatch, DeathcaseCase, DeathcaseExport
from bingan_deathcase.service import CHARGE_SLOT, DeathcaseError, order_pages
from bingan_deathcase.settings import DEFAULT_ORDER, DeathcaseSettings, check_pattern
from case_world import CN, admission

NOV = (dt.date(2026, 11, 1), dt.date(2026, 11, 30))
ACT = audit.Actor(staff_no="REC1", client_ip="10.0.0.5")
DEATH, AAMA = "ZY2026110001", "ZY2026110002"


def sheet(rows: list[list], title: bool = True) -> bytes:
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    ws = wb.add_worksheet()
    r = 0
    if title:
        ws.write_row(0, 0, ["住院费用明细清单"])
        r = 1
    for row in rows:
        ws.write_row(r, 0, row)
        r += 1
    wb.close()
    return buf.getvalue()


GOOD = [["日期", "类别", "项目名称", "规格", "数量", "单位", "单价", "金额"],
        ["2026-11-05", "西药", "注射用头孢曲松钠", "1g", 3, "支", 36.5, 109.5],
        ["2026-11-06", "检验", "血常规", "", 1, "次", 25, 25],
        ["2026-11-07", "治疗", "抢救费", "", 2, "次", 150, 300],
        ["合计", "", "", "", "", "", "", 434.5]]


def test_selection_is_4_and_5_in_the_period(world):
    rt = world.rt
    with rt.sessions() as s:
        rows = service.worklist(s, rt, *NOV)
        assert [r.admission_no for r in rows] == [DEATH, AAMA, "ZY2026110007"]
        assert [r.way_label for r in rows] == ["死亡", "非医嘱离院", "死亡"]
        assert {r.state for r in rows} == {"prepare"}
        assert [r.pages for r in rows] == [10, 3, 0]
        # one department; the period boundary is the hospital's midnight
        assert [r.admission_no for r in service.worklist(s, rt, *NOV, department="2001")] == [AAMA]
        assert [r.admission_no for r in service.worklist(
            s, rt, dt.date(2026, 12, 1), dt.date(2026, 12, 31))] == ["ZY2026120008"]
        with pytest.raises(DeathcaseError):
            service.worklist(s, rt, dt.date(2026, 12, 1), dt.date(2026, 11, 1))
        with pytest.raises(DeathcaseError):
            service.select_admissions(s, rt, *NOV, ways=("1",))
        with pytest.raises(DeathcaseError, match="离院方式"):
            service.get_admission(s, "ZY2026110003")


def test_page_order_by_rule():
    pages = [(1, 1, "入院记录"), (2, 2, "病案首页"), (3, 3, "收费清单"), (4, 4, "病程记录"),
             (5, 5, None), (6, 6, "死亡记录"), (7, 7, "门诊病历"), (8, 8, "病程记录"),
             (9, 9, "体温单"), (10, 10, "死亡病例讨论")]
    # default: front page, death record, discussion, admission, progress (captured order),
    # temperature chart; an unknown type, then untyped, then the record's own charge page,
    # then the merged list
    assert order_pages(pages, DEFAULT_ORDER) == [2, 6, 10, 1, 4, 8, 9, 7, 5, 3, CHARGE_SLOT]
    # a rule with types after the charge list and without some types
    rule = ["死亡记录", "病案首页", "收费清单", "体温单"]
    assert order_pages(pages, rule) == [6, 2, 1, 4, 7, 8, 10, 5, 3, CHARGE_SLOT, 9]
    # no 收费清单 in the rule: the charge list goes last
    assert order_pages(pages, ["病案首页"])[-1] is CHARGE_SLOT
    assert order_pages([], DEFAULT_ORDER) == [CHARGE_SLOT]


def test_record_order_follows_the_settings_per_discharge_way(world):
    rt = world.rt
    st = rt.settings(DeathcaseSettings)
    ids = {t: pid for pid, t, _ in world.pages[AAMA]}
    with rt.sessions() as s:
        adm = service.get_admission(s, AAMA)
        assert [t for _, t in service.record_order(s, rt, adm)] == [
            "病案首页", "出院记录", "护理记录", "收费清单"]
        st.page_order_by_way = {"4": ["护理记录", "收费清单", "病案首页"]}
        order = service.record_order(s, rt, adm)
        assert [pid for pid, _ in order] == [ids["护理记录"], ids["出院记录"], CHARGE_SLOT,
                                             ids["病案首页"]]


def test_settings_refuse_bad_rules():
    for pattern in ("{mrn}.txt", "{mrn}/{visit_no}.pdf", "{nosuch}.pdf", "{}.pdf", "{mrn.pdf"):
        with pytest.raises(ValueError):
            check_pattern(pattern)
    with pytest.raises(ValueError):
        DeathcaseSettings(page_order_by_way={"1": ["病案首页"]})
    with pytest.raises(ValueError):
        DeathcaseSettings(page_order=[])


def _pdf_images(data: bytes) -> list[bytes | None]:
    """Per page, the raw bytes of its one image XObject (None: a page without images)."""
    out: list[bytes | None] = []
    with pikepdf.open(io.BytesIO(data)) as pdf:
        for p in pdf.pages:
            imgs = list(p.get_images().values()) if hasattr(p, "get_images") else list(p.images.values())
            out.append(imgs[0].read_raw_bytes() if imgs else None)
    return out


def _pdf_text(data: bytes, page: int) -> str:
    doc = pypdfium2.PdfDocument(data)
    try:
        return doc[page].get_textpage().get_text_range()
    finally:
        doc.close()


def test_charge_list_from_xlsx_is_merged_and_exported_in_order(world):
    rt = world.rt
    with rt.sessions() as s, s.begin():
        adm = service.get_admission(s, DEATH)
        case = service.upload_charges(s, rt, adm, sheet(GOOD), "清单.xlsx", staff_no="REC1",
                                      actor=ACT)
        assert (case.charge_source, case.charge_total, case.charge_pages) == ("xlsx", 434.5, 1)
    with rt.sessions() as s:
        assert service.worklist(s, rt, *NOV)[0].state == "charges"
    with rt.sessions() as s, s.begin():
        batch = service.export(s, rt, world.staff("REC1"), [DEATH], actor=ACT)
        no = batch.batch_no
    with rt.sessions() as s:
        b = service.get_batch(s, no)
        (exp, _), = service.batch_exports(s, b)
        pdf = rt.store.get(exp.blob_sha256)
    by_id = {pid: data for pid, _, data in world.pages[DEATH]}
    expected = [2, 6, 10, 1, 4, 8, 9, 7, 5, 3]  # positions in DEATH_TYPES, 1-based
    ids = [world.pages[DEATH][i - 1][0] for i in expected]
    assert exp.page_ids == ids
    imgs = _pdf_images(pdf)
    assert exp.pages == len(imgs) == 1 + 10 + 1  # cover, the record, the charge list
    assert imgs[0] is None and imgs[-1] is None
    # the JPEGs are embedded as captured (not re-encoded), in the rule's order
    assert imgs[1:11] == [by_id[i] for i in ids]
    assert "死亡病例" in _pdf_text(pdf, 0)
    last = _pdf_text(pdf, 11)
    for item in ("注射用头孢曲松钠", "血常规", "抢救费", "434.50"):
        assert item in last


@pytest.mark.parametrize("rows, why", [
    ([["名称"], ["床位费"]], "表头"),
    ([GOOD[0], ["2026-11-05", "西药", "床位费", "", 1, "天", 45, "四十五"]], "不是数字"),
    ([GOOD[0], ["2026-11-05", "西药", "床位费", "", 1, "天", 45, 45], ["合计"] + [""] * 6 + [99]],
     "不符"),
    ([GOOD[0], ["2026-13-45", "西药", "床位费", "", 1, "天", 45, 45]], "不是日期"),
    ([GOOD[0]], "没有任何项目"),
])
def test_bad_charge_list_is_refused_and_nothing_written(world, rows, why):
    rt = world.rt
    with pytest.raises(DeathcaseError, match=why):
        with rt.sessions() as s, s.begin():
            adm = service.get_admission(s, DEATH)
            service.upload_charges(s, rt, adm, sheet(rows), "x.xlsx", staff_no="REC1", actor=ACT)
    with rt.sessions() as s:
        assert s.scalar(select(func.count()).select_from(DeathcaseCase)) == 0
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "deathcase.charges")) == 0


def test_charge_list_bounds_and_pdf(world):
    rt = world.rt
    st = rt.settings(DeathcaseSettings)
    with rt.sessions() as s, s.begin():
        adm = service.get_admission(s, AAMA)
        with pytest.raises(DeathcaseError, match="不是 PDF|无法读取"):
            service.upload_charges(s, rt, adm, b"%PDF-1.4 garbage", "x.pdf", staff_no="R",
                                   actor=ACT)
        st.charge_max_bytes = 1000
        with pytest.raises(DeathcaseError, match="过大"):
            service.upload_charges(s, rt, adm, b"x" * 1001, "x.xlsx", staff_no="R", actor=ACT)
        st.charge_max_bytes = 20 * 1024 * 1024
        st.charge_max_pages = 2
        three = pikepdf.new()
        for _ in range(3):
            three.add_blank_page()
        buf = io.BytesIO()
        three.save(buf)
        with pytest.raises(DeathcaseError, match="超过 2 页"):
            service.upload_charges(s, rt, adm, buf.getvalue(), "x.pdf", staff_no="R", actor=ACT)
        two = pikepdf.new()
        two.add_blank_page()
        two.add_blank_page()
        buf = io.BytesIO()
        two.save(buf)
        case = service.upload_charges(s, rt, adm, buf.getvalue(), "his.pdf", staff_no="R",
                                      actor=ACT)
        assert (case.charge_source, case.charge_pages) == ("pdf", 2)


def test_file_names_manifest_checksums_and_versions(world):
    rt = world.rt
    with rt.sessions() as s, s.begin():
        b1 = service.export(s, rt, world.staff("REC1"), [DEATH, AAMA], actor=ACT).batch_no
    with rt.sessions() as s:
        batch = service.get_batch(s, b1)
        data = rt.store.get(batch.zip_sha256)
        xlsx = rt.store.get(batch.manifest_xlsx_sha256)
        # the xlsx media type (65 characters) fits blob.media_type on PostgreSQL too
        from bingan.core.models import Blob
        assert s.get(Blob, batch.manifest_xlsx_sha256).media_type == service.XLSX_TYPE
    z = zipfile.ZipFile(io.BytesIO(data))
    names = sorted(z.namelist())
    org = "12330100470000000X"  # plugins.toml's org_code
    assert names == sorted([f"{org}_00900001_1_20261110.pdf", f"{org}_00900002_1_20261120.pdf",
                            "清单.xlsx", "清单.csv"])
    rows = list(csv.reader(io.StringIO(z.read("清单.csv").decode("utf-8-sig"))))
    assert rows[0][:2] == ["序号", "文件名"] and rows[0][-3:] == ["页数", "大小（字节）", "SHA-256"]
    for r in rows[1:]:
        pdf = z.read(r[1])
        assert r[-1] == hashlib.sha256(pdf).hexdigest()
        assert int(r[-2]) == len(pdf)
        assert int(r[-3]) == len(pikepdf.open(io.BytesIO(pdf)).pages)
    ws = openpyxl.load_workbook(io.BytesIO(xlsx)).active
    assert z.read("清单.xlsx") == xlsx
    cells = list(ws.iter_rows(min_row=4, values_only=True))
    assert isinstance(cells[0][7], dt.datetime) and cells[0][7].date() == dt.date(2026, 11, 10)
    assert isinstance(cells[0][10], int) and isinstance(cells[0][11], int)
    assert cells[-1][0] == "合计" and cells[-1][1] == 2
    assert cells[-1][10] == cells[0][10] + cells[1][10]
    # a correction, then a re-export: a new version, the old one kept
    with rt.sessions() as s, s.begin():
        service.upload_charges(s, rt, service.get_admission(s, DEATH), sheet(GOOD), "c.xlsx",
                               staff_no="REC1", actor=ACT)
    with rt.sessions() as s:
        assert {r.admission_no: r.state for r in service.worklist(s, rt, *NOV)}[DEATH] == "charges"
    with rt.sessions() as s, s.begin():
        service.export(s, rt, world.staff("REC1"), [DEATH], actor=ACT)
    with rt.sessions() as s:
        vs = list(s.execute(select(DeathcaseExport.version, DeathcaseExport.pages).where(
            DeathcaseExport.admission_id == admission(rt, DEATH).id)
            .order_by(DeathcaseExport.version)))
        assert [v for v, _ in vs] == [1, 2] and vs[1][1] == vs[0][1] + 1  # + the charge list
        ev = list(s.scalars(select(AuditEvent).where(AuditEvent.action == "deathcase.export",
                                                     AuditEvent.admission_no == DEATH)))
        assert [e.staff_no for e in ev] == ["REC1", "REC1"]


def test_a_pattern_with_version_and_department(world):
    rt = world.rt
    rt.settings(DeathcaseSettings).file_pattern = "{department}-{admission_no}-v{version}.pdf"
    with rt.sessions() as s, s.begin():
        b = service.export(s, rt, world.staff("REC1"), [AAMA], actor=ACT)
        (exp, _), = service.batch_exports(s, b)
        assert exp.file_name == f"重症医学科-{AAMA}-v1.pdf"


def test_export_goes_through_the_access_decision(world):
    rt = world.rt
    rec, phy = world.staff("REC1"), world.staff("PHY1")
    with pytest.raises(PermissionError, match=DEATH):
        with rt.sessions() as s, s.begin():
            service.export(s, rt, phy, [DEATH], actor=ACT)
    with rt.sessions() as s:
        assert s.scalar(select(func.count()).select_from(DeathcaseBatch)) == 0
        assert s.scalar(select(func.count()).select_from(DeathcaseExport)) == 0
    with rt.sessions() as s, s.begin():  # a record without pages is refused by name
        with pytest.raises(DeathcaseError, match="还没有采集"):
            service.export(s, rt, rec, ["ZY2026110007"], actor=ACT)
        # downloading a batch asks again, for the person downloading
        b = service.export(s, rt, rec, [DEATH], actor=ACT)
        assert service.may_download(s, rt, rec, b, actor=ACT) == []
        assert service.may_download(s, rt, phy, b, actor=ACT)


def test_labels_upload_register_and_states(world):
    rt = world.rt
    with rt.sessions() as s, s.begin():
        adm = service.get_admission(s, AAMA)
        pdf = service.make_labels(s, rt, adm, staff_no="REC1", actor=ACT)
    assert len(pikepdf.open(io.BytesIO(pdf)).pages) == 2
    text = _pdf_text(pdf, 1)
    assert "非医嘱离院" in text and "重症医学科" in text and "2026-11-20" in text
    with rt.sessions() as s:
        assert {r.admission_no: r.state for r in service.worklist(s, rt, *NOV)}[AAMA] == "labelled"
    with rt.sessions() as s, s.begin():
        no = service.export(s, rt, world.staff("REC1"), [AAMA], actor=ACT).batch_no
    with rt.sessions() as s:
        assert service.worklist(s, rt, *NOV, state="exported")[0].admission_no == AAMA
    with rt.sessions() as s, s.begin():
        service.mark_uploaded(s, rt, service.get_batch(s, no), staff_no="REC1",
                              note="省质控平台 回执 123", actor=ACT)
    with rt.sessions() as s, s.begin():
        with pytest.raises(DeathcaseError, match="已上传"):
            service.mark_uploaded(s, rt, service.get_batch(s, no), staff_no="REC1", note="",
                                  actor=ACT)
    with rt.sessions() as s:
        row = service.worklist(s, rt, *NOV, state="uploaded")[0]
        assert (row.admission_no, row.last_version) == (AAMA, 1)
        b = service.get_batch(s, no)
        assert (b.uploaded_by, b.upload_note) == ("REC1", "省质控平台 回执 123")
        assert b.uploaded_at.astimezone(CN).date() >= dt.date(2026, 1, 1)


def test_hook_charge_list(world):
    """A HIS connector's charge list is rendered and merged; without one the clerk is told to
    upload; an empty answer changes nothing."""
    from bingan.hooks import hookimpl

    from bingan_deathcase.hookspecs import ChargeItem, ChargeList

    rt = world.rt
    with rt.sessions() as s, s.begin():
        # no connector (or his_sql without a charge view): the clerk is sent to the upload
        with pytest.raises(DeathcaseError, match="未接入|没有返回.*请上传"):
            service.his_charges(s, rt, service.get_admission(s, AAMA), staff_no="REC1",
                                actor=ACT)

    class His:
        answer: ChargeList | None = None

        @hookimpl
        def charge_list(self, session, admission, rt):
            assert admission.admission_no == AAMA
            return self.answer

    his = His()
    rt.pm.register(his, name="test-his")
    try:
        with rt.sessions() as s, s.begin():
            with pytest.raises(DeathcaseError, match="没有返回"):
                service.his_charges(s, rt, service.get_admission(s, AAMA), staff_no="REC1",
                                    actor=ACT)
        his.answer = ChargeList((ChargeItem("床位费", 90.0, 2, "天", 45.0),
                                 ChargeItem("呼吸机辅助呼吸", 1200.0, 24, "小时", 50.0)), "住院结算")
        with rt.sessions() as s, s.begin():
            case = service.his_charges(s, rt, service.get_admission(s, AAMA), staff_no="REC1",
                                       actor=ACT)
            assert (case.charge_source, case.charge_total) == ("his", 1290.0)
            pdf = rt.store.get(case.charge_sha256)
        assert "呼吸机辅助呼吸" in _pdf_text(pdf, 0) and "1,290.00" in _pdf_text(pdf, 0)
    finally:
        rt.pm.unregister(his)

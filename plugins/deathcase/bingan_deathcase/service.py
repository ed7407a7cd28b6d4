"""The work on death and against-advice records (X1): selection, per-record state, page
order by the configured rule, the charge list (HIS hook, uploaded xlsx or PDF), labels,
export (one PDF per record, named by the pattern; a manifest in xlsx and csv with page
counts, sizes and SHA-256; one zip per batch), the upload mark, and who did what."""

from __future__ import annotations

import datetime as dt
import io
import secrets
import tempfile
import zipfile
from dataclasses import dataclass
from typing import Any

import pikepdf
from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from bingan.core import audit, permissions
from bingan.core.config import CoreSettings
from bingan.core.exporting import to_csv
from bingan.core.models import Admission, Page, utcnow
from bingan.core.pages import current_pages
from bingan.core.records import to_ref
from bingan.core.spreadsheets import SheetError, SheetLimits, read_rows
from bingan.core.staff import department_names
from bingan.core.storage import store_blob

from bingan_deathcase import pdfs
from bingan_deathcase.hookspecs import ChargeItem, ChargeList
from bingan_deathcase.models import (
    CHARGE_SOURCES, STATES, DeathcaseBatch, DeathcaseCase, DeathcaseExport,
)
from bingan_deathcase.settings import CHARGE_TYPE, DISCHARGE_WAYS, DeathcaseSettings, file_name

WAYS = tuple(DISCHARGE_WAYS)
MANIFEST_HEADERS = ["序号", "文件名", "病案号", "住院次数", "住院号", "姓名", "离院方式", "出院日期",
                    "科室", "版本", "页数", "大小（字节）", "SHA-256"]

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class DeathcaseError(ValueError):
    """A request that cannot be done (message in Chinese, for the user); nothing was written."""


# ============================================================================================
# Selection and state
# ============================================================================================


@dataclass
class CaseRow:
    admission_id: int
    admission_no: str
    mrn: str
    visit_no: int
    name: str
    discharge_way: str
    way_label: str
    discharged: dt.date
    department: str
    pages: int
    state: str
    labels_at: dt.datetime | None
    charge_source: str | None
    last_version: int | None
    last_export_at: dt.datetime | None
    uploaded_at: dt.datetime | None

    @property
    def state_label(self) -> str:
        return STATES[self.state]


def state_of(case: DeathcaseCase | None, last: DeathcaseExport | None,
             batch: DeathcaseBatch | None) -> str:
    """uploaded > exported > charges > labelled > prepare. A correction after an export (a new
    charge list, new labels) puts the record back to the step it is at until it is exported
    again; uploaded means the batch of its latest version was marked uploaded."""
    changed = None
    if case is not None:
        changed = max((t for t in (case.labels_at, case.charge_at) if t), default=None)
    if last is not None and (changed is None or changed <= last.created_at):
        return "uploaded" if batch is not None and batch.uploaded_at else "exported"
    if case is not None and case.charge_sha256:
        return "charges"
    if case is not None and case.labels_at:
        return "labelled"
    return "prepare"


def _local_bounds(start: dt.date, end: dt.date, tz) -> tuple[dt.datetime, dt.datetime]:
    if end < start:
        raise DeathcaseError("结束日期早于开始日期")
    if (end - start).days > 3 * 366:
        raise DeathcaseError("查询区间最长三年")
    return (dt.datetime.combine(start, dt.time(), tz),
            dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tz))


def select_admissions(session: Session, rt, start: dt.date, end: dt.date,
                      department: str | None = None, ways: tuple[str, ...] = WAYS):
    """The query of admissions discharged in [start, end] (hospital dates) with 离院方式 4 or
    5, not cancelled, optionally of one discharge department, oldest discharge first."""
    lo, hi = _local_bounds(start, end, rt.tz)
    bad = set(ways) - set(WAYS)
    if bad:
        raise DeathcaseError(f"离院方式只能是 4（非医嘱离院）或 5（死亡），不能是 {sorted(bad)}")
    q = (select(Admission).options(joinedload(Admission.patient))
         .where(Admission.discharge_way.in_(ways), Admission.discharged_at >= lo,
                Admission.discharged_at < hi, Admission.cancelled_at.is_(None))
         .order_by(Admission.discharged_at, Admission.id))
    if department:
        q = q.where(Admission.discharge_department == department)
    return q


def worklist(session: Session, rt, start: dt.date, end: dt.date, department: str | None = None,
             state: str | None = None, limit: int = 2000) -> list[CaseRow]:
    if state and state not in STATES:
        raise DeathcaseError("未知的状态")
    adms = list(session.scalars(select_admissions(session, rt, start, end, department)
                                .limit(limit)).unique())
    ids = [a.id for a in adms]
    cases = {c.admission_id: c for c in session.scalars(
        select(DeathcaseCase).where(DeathcaseCase.admission_id.in_(ids)))} if ids else {}
    last: dict[int, DeathcaseExport] = {}
    if ids:
        for ex in session.scalars(select(DeathcaseExport).where(
                DeathcaseExport.admission_id.in_(ids)).order_by(DeathcaseExport.version)):
            last[ex.admission_id] = ex
    batches = {b.id: b for b in session.scalars(select(DeathcaseBatch).where(
        DeathcaseBatch.id.in_({e.batch_id for e in last.values() if e.batch_id})))} \
        if last else {}
    pages: dict[int, int] = dict(session.execute(
        select(Page.admission_id, func.count()).where(Page.admission_id.in_(ids),
                                                      Page.replaced_by_id.is_(None))
        .group_by(Page.admission_id)).all()) if ids else {}
    names = department_names(session)
    out = []
    for a in adms:
        c, e = cases.get(a.id), last.get(a.id)
        b = batches.get(e.batch_id) if e and e.batch_id else None
        st = state_of(c, e, b)
        if state and st != state:
            continue
        dept = a.discharge_department or ""
        out.append(CaseRow(
            a.id, a.admission_no, a.patient.mrn, a.visit_no, a.patient.name,
            a.discharge_way or "", DISCHARGE_WAYS.get(a.discharge_way or "", ""),
            a.discharged_at.astimezone(rt.tz).date(), names.get(dept, dept), pages.get(a.id, 0),
            st, c.labels_at if c else None, c.charge_source if c else None,
            e.version if e else None, e.created_at if e else None,
            b.uploaded_at if b else None))
    return out


def get_admission(session: Session, admission_no: str) -> Admission:
    adm = session.scalar(select(Admission).options(joinedload(Admission.patient))
                         .where(Admission.admission_no == admission_no))
    if adm is None:
        raise DeathcaseError(f"没有住院号为 {admission_no} 的病案")
    if adm.discharge_way not in WAYS:
        raise DeathcaseError(f"{admission_no} 的离院方式不是死亡或非医嘱离院")
    if adm.cancelled_at is not None:
        raise DeathcaseError(f"{admission_no} 已被 HIS 取消")
    return adm


def case_of(session: Session, adm: Admission) -> DeathcaseCase:
    case = session.scalar(select(DeathcaseCase).where(DeathcaseCase.admission_id == adm.id))
    if case is None:
        case = DeathcaseCase(admission_id=adm.id, created_at=utcnow())
        session.add(case)
        session.flush()
    return case


def case_info(session: Session, rt, adm: Admission) -> pdfs.CaseInfo:
    names = department_names(session)
    dept = adm.discharge_department or ""
    return pdfs.CaseInfo(
        hospital=rt.settings(CoreSettings).hospital_name, mrn=adm.patient.mrn,
        name=adm.patient.name, sex=adm.patient.sex, admission_no=adm.admission_no,
        visit_no=adm.visit_no, barcode=adm.barcode,
        discharge_way=DISCHARGE_WAYS.get(adm.discharge_way or "", ""),
        admitted=adm.admitted_at.astimezone(rt.tz).date(),
        discharged=adm.discharged_at.astimezone(rt.tz).date() if adm.discharged_at else None,
        department=names.get(dept, dept))


# ============================================================================================
# Page order
# ============================================================================================

CHARGE_SLOT = None  # where the merged charge list goes in an ordered list of page ids


def order_pages(pages: list[tuple[int, int, str | None]], order: list[str]) -> list[int | None]:
    """Page ids in export order by the rule ``order`` (page types), from (id, seq, type) in
    captured order. Pages of one type keep their captured order; typed pages whose type the
    rule does not name come just before the charge list, untyped pages after them; record
    pages typed 收费清单 come at the charge list's place, before the merged list, whose slot
    is the ``CHARGE_SLOT`` (None) entry. A rule without 收费清单 puts the charge list last."""
    rank = {t: i for i, t in enumerate(dict.fromkeys(order))}
    charge = rank.get(CHARGE_TYPE, len(rank) + 2)

    def key(p: tuple[int, int, str | None]) -> tuple[float, int, int]:
        pid, seq, t = p
        if t is None or t == "":
            r = charge - 0.25 if CHARGE_TYPE in rank else charge - 1
        elif t in rank:
            r = rank[t]
        else:
            r = charge - 0.5 if CHARGE_TYPE in rank else charge - 1.5
        return (r, seq, pid)

    ordered: list[int | None] = [pid for pid, _, _ in sorted(pages, key=key)]
    # the merged list goes after every page ranked at or before the charge place
    pos = sum(1 for p in pages if key(p)[0] <= charge)
    ordered.insert(pos, CHARGE_SLOT)
    return ordered


def record_order(session: Session, rt, adm: Admission) -> list[tuple[int | None, str]]:
    """The export order of a record's current pages: (page id or CHARGE_SLOT, page type)."""
    st = rt.settings(DeathcaseSettings)
    cur = current_pages(session, adm.id)
    types = {p.id: p.page_type or "" for p in cur}
    ids = order_pages([(p.id, p.seq, p.page_type) for p in cur], st.order_for(adm.discharge_way))
    return [(i, CHARGE_TYPE if i is None else (types[i] or "未分类")) for i in ids]


# ============================================================================================
# Charge list
# ============================================================================================

HEADERS = {
    "name": ("项目名称", "收费项目", "项目", "名称", "药品名称", "费用名称"),
    "amount": ("金额", "总金额", "费用", "金额（元）", "金额(元)", "合计金额"),
    "quantity": ("数量",), "unit": ("单位",), "price": ("单价", "单价（元）", "单价(元)"),
    "spec": ("规格",), "category": ("类别", "费用类别", "项目类别", "费别"),
    "code": ("编码", "项目编码", "收费编码"), "day": ("日期", "费用日期", "收费日期"),
}
_HEAD_OF = {h: k for k, hs in HEADERS.items() for h in hs}


def _num(v: Any, where: str) -> float | None:
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    if isinstance(v, bool):
        raise DeathcaseError(f"{where}：不是数字")
    if isinstance(v, (int, float)):
        return float(v)
    try:
        return float(str(v).replace(",", "").replace("，", "").replace("¥", "").strip())
    except ValueError:
        raise DeathcaseError(f"{where}：“{str(v)[:20]}”不是数字") from None


def _day(v: Any, where: str) -> dt.date | None:
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    s = str(v).strip().replace("/", "-").replace(".", "-")[:10]
    try:
        return dt.date.fromisoformat(s)
    except ValueError:
        raise DeathcaseError(f"{where}：“{str(v)[:20]}”不是日期") from None


def charges_from_sheet(data: bytes, filename: str, st: DeathcaseSettings) -> ChargeList:
    """The items of an uploaded charge list spreadsheet (xlsx or csv), read with the work
    bounded (``core.spreadsheets``): a header row among the first 10 rows naming at least the
    item and the amount, then one item per row; a 合计 row is checked against the sum."""
    limits = SheetLimits(max_bytes=st.charge_max_bytes, max_cells=st.charge_max_rows * 12,
                         max_columns=30)
    cols: dict[str, int] | None = None
    items: list[ChargeItem] = []
    stated_total: float | None = None
    try:
        for n, row in enumerate(read_rows(data, filename, limits=limits), start=1):
            cells = [c.strip() if isinstance(c, str) else c for c in row]
            if cols is None:
                found = {_HEAD_OF[c]: i for i, c in enumerate(cells)
                         if isinstance(c, str) and c in _HEAD_OF}
                if "name" in found and "amount" in found:
                    cols = found
                elif n >= 10:
                    raise DeathcaseError("前 10 行里没有表头（至少要有“项目名称”和“金额”两列）")
                continue
            def get(k: str) -> Any:
                i = cols.get(k)  # type: ignore[union-attr]
                return cells[i] if i is not None and i < len(cells) else None
            name = get("name")
            first = next((c for c in cells if c not in (None, "")), None)
            if isinstance(first, str) and first.replace(" ", "") in ("合计", "总计"):
                stated_total = _num(get("amount"), f"第 {n} 行金额")
                continue
            if name is None or str(name).strip() == "":
                if any(c not in (None, "") for c in cells):
                    raise DeathcaseError(f"第 {n} 行没有项目名称")
                continue
            amount = _num(get("amount"), f"第 {n} 行金额")
            if amount is None:
                raise DeathcaseError(f"第 {n} 行没有金额")
            items.append(ChargeItem(
                name=str(name)[:100], amount=round(amount, 2),
                quantity=_num(get("quantity"), f"第 {n} 行数量"),
                unit=str(get("unit") or "")[:10], price=_num(get("price"), f"第 {n} 行单价"),
                spec=str(get("spec") or "")[:40], category=str(get("category") or "")[:20],
                code=str(get("code") or "")[:40], day=_day(get("day"), f"第 {n} 行日期")))
            if len(items) > st.charge_max_rows:
                raise DeathcaseError(f"收费清单超过 {st.charge_max_rows} 行")
    except SheetError as exc:
        raise DeathcaseError(str(exc)) from None
    if cols is None:
        raise DeathcaseError("没有找到表头（至少要有“项目名称”和“金额”两列）")
    if not items:
        raise DeathcaseError("收费清单没有任何项目")
    out = ChargeList(tuple(items), source="上传 Excel")
    if stated_total is not None and abs(stated_total - out.total) > 0.005:
        raise DeathcaseError(f"合计行金额 {stated_total:.2f} 与各项之和 {out.total:.2f} 不符")
    return out


def check_pdf(data: bytes, st: DeathcaseSettings) -> tuple[bytes, int]:
    """An uploaded charge-list PDF, bounded (size first, then page count) and rewritten by
    pikepdf (so what is merged later is a well-formed PDF); returns it and its pages."""
    if not data:
        raise DeathcaseError("文件是空的")
    if len(data) > st.charge_max_bytes:
        raise DeathcaseError(f"文件过大（上限 {st.charge_max_bytes // 1024 // 1024} MB）")
    if not data.startswith(b"%PDF-"):
        raise DeathcaseError("不是 PDF 文件")
    try:
        with pikepdf.open(io.BytesIO(data)) as pdf:
            if pdf.is_encrypted:
                raise DeathcaseError("PDF 已加密，请上传未加密的收费清单")
            n = len(pdf.pages)
            if n == 0:
                raise DeathcaseError("PDF 没有页面")
            if n > st.charge_max_pages:
                raise DeathcaseError(f"PDF 超过 {st.charge_max_pages} 页")
            buf = io.BytesIO()
            pdf.save(buf)
    except pikepdf.PdfError as exc:
        raise DeathcaseError(f"PDF 无法读取：{str(exc)[:80]}") from None
    except pikepdf.PasswordError:
        raise DeathcaseError("PDF 已加密，请上传未加密的收费清单") from None
    return buf.getvalue(), n


def set_charges(session: Session, rt, adm: Admission, *, source: str, pdf: bytes, pages: int,
                total: float | None, filename: str, staff_no: str,
                actor: audit.Actor) -> DeathcaseCase:
    assert source in CHARGE_SOURCES
    case = case_of(session, adm)
    case.charge_sha256 = store_blob(session, rt.store, pdf, "application/pdf")
    case.charge_pages, case.charge_source, case.charge_total = pages, source, total
    case.charge_filename = filename[:255]
    case.charge_at, case.charge_by = utcnow(), staff_no
    audit.record(session, rt, "deathcase.charges", actor=actor, mrn=adm.patient.mrn,
                 admission_no=adm.admission_no,
                 detail={"source": source, "pages": pages, "total": total,
                         "file": filename[:255]})
    return case


def upload_charges(session: Session, rt, adm: Admission, data: bytes, filename: str, *,
                   staff_no: str, actor: audit.Actor) -> DeathcaseCase:
    """An uploaded charge list: a PDF as it is, a spreadsheet rendered to PDF pages."""
    st = rt.settings(DeathcaseSettings)
    if len(data) > st.charge_max_bytes:
        raise DeathcaseError(f"文件过大（上限 {st.charge_max_bytes // 1024 // 1024} MB）")
    if data.startswith(b"%PDF-") or filename.lower().endswith(".pdf"):
        pdf, pages = check_pdf(data, st)
        return set_charges(session, rt, adm, source="pdf", pdf=pdf, pages=pages, total=None,
                           filename=filename, staff_no=staff_no, actor=actor)
    charges = charges_from_sheet(data, filename, st)
    pdf, pages = pdfs.charge_pdf(charges, case_info(session, rt, adm))
    return set_charges(session, rt, adm, source="xlsx", pdf=pdf, pages=pages,
                       total=charges.total, filename=filename, staff_no=staff_no, actor=actor)


def his_available(rt) -> bool:
    hook = getattr(rt.pm.hook, "charge_list", None)
    return bool(hook and hook.get_hookimpls())


def his_charges(session: Session, rt, adm: Admission, *, staff_no: str,
                actor: audit.Actor) -> DeathcaseCase:
    """The charge list from the HIS (the ``charge_list`` hook of a connector)."""
    if not his_available(rt):
        raise DeathcaseError("未接入 HIS 收费清单接口，请上传收费清单（Excel 或 PDF）")
    charges = rt.pm.hook.charge_list(session=session, admission=to_ref(adm), rt=rt)
    if charges is None or not charges.items:
        raise DeathcaseError("HIS 没有返回这次住院的收费清单（接口未配置收费视图，或 HIS 中没有这次住院的费用），"
                             "请上传收费清单（Excel 或 PDF）")
    pdf, pages = pdfs.charge_pdf(charges, case_info(session, rt, adm))
    return set_charges(session, rt, adm, source="his", pdf=pdf, pages=pages,
                       total=charges.total, filename=f"HIS {charges.source}", staff_no=staff_no,
                       actor=actor)


# ============================================================================================
# Labels
# ============================================================================================


def make_labels(session: Session, rt, adm: Admission, *, staff_no: str,
                actor: audit.Actor) -> bytes:
    pdf = pdfs.labels_pdf(case_info(session, rt, adm))
    case = case_of(session, adm)
    case.labels_at, case.labels_by = utcnow(), staff_no
    audit.record(session, rt, "deathcase.labels", actor=actor, mrn=adm.patient.mrn,
                 admission_no=adm.admission_no)
    return pdf


# ============================================================================================
# Export
# ============================================================================================


@dataclass
class Built:
    """One record's exported PDF, once stored (its bytes are not kept: a batch of hundreds of
    records would not fit in memory)."""

    admission: Admission
    file_name: str
    sha256: str
    size: int
    pages: int
    page_ids: list[int]
    version: int


def build_record_pdf(session: Session, rt, adm: Admission) -> tuple[bytes, int, list[int]]:
    """The record's export: the cover (if configured), its pages in the rule's order, the
    charge list merged at its place. Refuses a record without pages."""
    st = rt.settings(DeathcaseSettings)
    order = record_order(session, rt, adm)
    pages = {p.id: p for p in current_pages(session, adm.id)}
    if not pages:
        raise DeathcaseError(f"{adm.admission_no} 还没有采集任何页面")
    case = session.scalar(select(DeathcaseCase).where(DeathcaseCase.admission_id == adm.id))
    parts: list[bytes] = []
    if st.cover_page:
        parts.append(pdfs.cover_pdf(case_info(session, rt, adm)))
    run: list[tuple[bytes, int | None, int | None, float | None]] = []
    ids: list[int] = []
    for pid, _ in order:
        if pid is None:
            if run:
                parts.append(pdfs.pages_pdf(run))
                run = []
            if case is not None and case.charge_sha256:
                parts.append(rt.store.get(case.charge_sha256))
            continue
        p = pages[pid]
        if not p.image_sha256:
            raise DeathcaseError(f"{adm.admission_no} 第 {p.seq} 页没有图像")
        run.append((rt.store.get(p.image_sha256), p.width, p.height, p.dpi))
        ids.append(pid)
    if run:
        parts.append(pdfs.pages_pdf(run))
    pdf, n = pdfs.assemble(parts)
    return pdf, n, ids


def name_for(rt, adm: Admission, version: int, dept_names: dict[str, str]) -> str:
    st = rt.settings(DeathcaseSettings)
    core = rt.settings(CoreSettings)
    dept = adm.discharge_department or ""
    return file_name(
        st.file_pattern, org_code=core.org_code or "", mrn=adm.patient.mrn,
        visit_no=adm.visit_no, admission_no=adm.admission_no,
        discharge_date=adm.discharged_at.astimezone(rt.tz).date(),
        admitted_date=adm.admitted_at.astimezone(rt.tz).date(),
        discharge_way=adm.discharge_way or "", department=dept_names.get(dept, dept),
        version=version, name=adm.patient.name)


def manifest_rows(rt, built: list[Built]) -> list[list[Any]]:
    names: list[list[Any]] = []
    for i, b in enumerate(built, start=1):
        a = b.admission
        names.append([i, b.file_name, a.patient.mrn, a.visit_no, a.admission_no, a.patient.name,
                      DISCHARGE_WAYS.get(a.discharge_way or "", ""),
                      a.discharged_at.astimezone(rt.tz).date(), a.discharge_department or "",
                      b.version, b.pages, b.size, b.sha256])
    return names


def manifest_xlsx(rows: list[list[Any]], title: str) -> bytes:
    """The manifest as xlsx: numbers as numbers, the discharge date as a date, a total row."""
    import xlsxwriter

    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_formulas": False,
                                   "strings_to_urls": False, "strings_to_numbers": False})
    ws = wb.add_worksheet("清单")
    bold = wb.add_format({"bold": True, "bg_color": "#E8EEF7", "border": 1})
    date = wb.add_format({"num_format": "yyyy-mm-dd"})
    tot = wb.add_format({"bold": True})
    ws.write_string(0, 0, title, wb.add_format({"bold": True, "font_size": 13}))
    ws.write_row(2, 0, MANIFEST_HEADERS, bold)
    r = 3
    for row in rows:
        for c, v in enumerate(row):
            if isinstance(v, dt.date):
                ws.write_datetime(r, c, dt.datetime.combine(v, dt.time()), date)
            elif isinstance(v, (int, float)):
                ws.write_number(r, c, v)
            else:
                ws.write_string(r, c, str(v))
        r += 1
    ws.write_string(r, 0, "合计", tot)
    ws.write_number(r, 1, len(rows), tot)
    ws.write_number(r, 10, sum(row[10] for row in rows), tot)
    ws.write_number(r, 11, sum(row[11] for row in rows), tot)
    for c, w in enumerate([6, 44, 12, 8, 18, 10, 12, 12, 10, 6, 8, 14, 66]):
        ws.set_column(c, c, w)
    ws.freeze_panes(3, 0)
    wb.close()
    return buf.getvalue()


def export(session: Session, rt, staff, admission_nos: list[str], *,
           actor: audit.Actor) -> DeathcaseBatch:
    """Export the records as one batch: the export decision for each (core's, audited; one
    refusal refuses the batch and nothing is written), a new version of each record's PDF,
    the manifest (xlsx + csv) and the zip. All in the caller's transaction."""
    st = rt.settings(DeathcaseSettings)
    nos = list(dict.fromkeys(n.strip() for n in admission_nos if n and n.strip()))
    if not nos:
        raise DeathcaseError("请至少选择一份病案")
    if len(nos) > st.max_batch:
        raise DeathcaseError(f"一批最多导出 {st.max_batch} 份病案")
    adms = [get_admission(session, n) for n in nos]
    refused = []
    for a in adms:
        d = permissions.decide(session, rt, staff, a, "export", actor=actor)
        if not d.allowed:
            refused.append(f"{a.admission_no}（{d.reason}）")
    if refused:
        raise PermissionError("无权导出：" + "；".join(refused))
    dept_names = department_names(session)
    names: dict[str, str] = {}
    plan = []
    for a in adms:  # every file name first: a collision refuses the batch before any work
        version = (session.scalar(select(func.max(DeathcaseExport.version))
                                  .where(DeathcaseExport.admission_id == a.id)) or 0) + 1
        name = name_for(rt, a, version, dept_names)
        if name in names:
            raise DeathcaseError(f"文件名 {name} 重复（{names[name]} 与 {a.admission_no}）："
                                 "请在文件名规则中加入能区分它们的字段")
        names[name] = a.admission_no
        plan.append((a, version, name))
    now = utcnow()
    batch_no = f"SW{now.astimezone(rt.tz):%Y%m%d%H%M%S}{secrets.token_hex(2).upper()}"
    built: list[Built] = []
    with tempfile.TemporaryFile() as tmp:
        # the zip is written to a temporary file, one record's PDF in memory at a time
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as z:  # JPEG PDFs do not shrink
            for a, version, name in plan:
                pdf, n, ids = build_record_pdf(session, rt, a)
                sha = store_blob(session, rt.store, pdf, "application/pdf")
                z.writestr(name, pdf)
                built.append(Built(a, name, sha, len(pdf), n, ids, version))
                del pdf
            rows = manifest_rows(rt, built)
            title = (f"{rt.settings(CoreSettings).hospital_name} 死亡及非医嘱离院病历导出清单 "
                     f"{batch_no}")
            xlsx = manifest_xlsx(rows, title)
            csv = to_csv(MANIFEST_HEADERS, rows, tz=rt.tz)
            z.writestr("清单.xlsx", xlsx)
            z.writestr("清单.csv", csv)
        size = tmp.tell()
        tmp.seek(0)
        zip_sha = store_blob(session, rt.store, tmp, "application/zip")
    batch = DeathcaseBatch(
        batch_no=batch_no, records=len(built), zip_sha256=zip_sha, zip_size=size,
        manifest_xlsx_sha256=store_blob(session, rt.store, xlsx, XLSX_TYPE),
        manifest_csv_sha256=store_blob(session, rt.store, csv, "text/csv"),
        created_by=staff.staff_no, created_at=now)
    session.add(batch)
    session.flush()
    for b in built:
        session.add(DeathcaseExport(
            admission_id=b.admission.id, version=b.version, batch_id=batch.id,
            file_name=b.file_name, blob_sha256=b.sha256, pages=b.pages, size=b.size,
            page_ids=b.page_ids, created_by=staff.staff_no, created_at=now))
        audit.record(session, rt, "deathcase.export", actor=actor, mrn=b.admission.patient.mrn,
                     admission_no=b.admission.admission_no,
                     detail={"batch": batch_no, "file": b.file_name, "version": b.version,
                             "pages": b.pages, "sha256": b.sha256})
    session.flush()
    return batch


def batch_exports(session: Session, batch: DeathcaseBatch) -> list[tuple[DeathcaseExport,
                                                                          Admission]]:
    return list(session.execute(
        select(DeathcaseExport, Admission).join(Admission,
                                                Admission.id == DeathcaseExport.admission_id)
        .options(joinedload(Admission.patient))
        .where(DeathcaseExport.batch_id == batch.id).order_by(DeathcaseExport.id)).unique())


def get_batch(session: Session, batch_no: str) -> DeathcaseBatch:
    b = session.scalar(select(DeathcaseBatch).where(DeathcaseBatch.batch_no == batch_no))
    if b is None:
        raise DeathcaseError(f"没有批次 {batch_no}")
    return b


def may_download(session: Session, rt, staff, batch: DeathcaseBatch, *,
                 actor: audit.Actor) -> list[str]:
    """The export decision for the person downloading, on every record of the batch (a zip
    holds their pages); returns the refusals (empty: allowed)."""
    refused = []
    for _, adm in batch_exports(session, batch):
        d = permissions.decide(session, rt, staff, adm, "export", actor=actor)
        if not d.allowed:
            refused.append(f"{adm.admission_no}（{d.reason}）")
    return refused


def mark_uploaded(session: Session, rt, batch: DeathcaseBatch, *, staff_no: str, note: str,
                  actor: audit.Actor) -> None:
    """The batch was uploaded to the quality-control platform (by hand: the platform has no
    API here); who said so, when, and their note are kept and audited."""
    if batch.uploaded_at is not None:
        raise DeathcaseError(f"批次 {batch.batch_no} 已于之前登记为已上传")
    batch.uploaded_at, batch.uploaded_by = utcnow(), staff_no
    batch.upload_note = note.strip()[:500] or None
    for exp, adm in batch_exports(session, batch):
        audit.record(session, rt, "deathcase.upload", actor=actor, mrn=adm.patient.mrn,
                     admission_no=adm.admission_no,
                     detail={"batch": batch.batch_no, "file": exp.file_name,
                             "version": exp.version, "note": batch.upload_note or ""})

"""The searches as the web pages, the JSON API and the CLI run them: validated, executed,
audited (``search.simple`` / ``search.combined`` / ``search.batch`` / ``search.fulltext`` /
``search.export``), each in its own transaction. A refused search is audited too (outcome
``failed``, with the reason) before the error goes back to the caller."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import select

from bingan.hooks.types import StaffRef

from bingan.core import audit, permissions
from bingan.core.fulltext import MAX_LIMIT, MAX_OFFSET
from bingan.core.exporting import to_csv, to_xlsx
from bingan.core.models import Admission, Page, Patient
from bingan.core.staff import department_names
from bingan_search import batch as batch_mod
from bingan_search.query import (
    Cond, Group, Node, QueryError, describe, name_condition, validate,
)
from bingan_search.results import (
    EXPORT_HEADERS, ResultPage, check_sort, export_row, iter_all, run_page,
)
from bingan_search.settings import SearchSettings

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_FULLTEXT_QUERY = 200


class SimpleCriteria(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The simple search form (M3). Dates are China dates ``YYYY-MM-DD``; ``name`` is a name
    prefix in Chinese or pinyin/initials in Latin letters; ``icd`` is an ICD-10 code or its
    first characters; ``diagnosis`` is part of a diagnosis name."""

    name: str = ""
    mrn: str = ""
    admission_no: str = ""
    admitted_from: str = ""
    admitted_to: str = ""
    discharged_from: str = ""
    discharged_to: str = ""
    icd: str = ""
    main_only: bool = False
    diagnosis: str = ""

    def given(self) -> dict[str, Any]:
        return {k: v for k in self.__struct_fields__ if (v := getattr(self, k)) not in ("", False)}


def _dates(field: str, start: str, end: str) -> Cond | None:
    start, end = start.strip(), end.strip()
    if start and end:
        return Cond(field, "between", [start, end])
    if start:
        return Cond(field, "ge", start)
    if end:
        return Cond(field, "le", end)
    return None


def simple_query(c: SimpleCriteria) -> Group:
    """The simple form as a query tree (all given fields must hold)."""
    items: list[Node] = []
    if c.name.strip():
        items.append(name_condition(c.name))
    if c.mrn.strip():
        items.append(Cond("mrn", "eq", c.mrn.strip()))
    if c.admission_no.strip():
        items.append(Cond("admission_no", "eq", c.admission_no.strip()))
    for cond in (_dates("admitted_at", c.admitted_from, c.admitted_to),
                 _dates("discharged_at", c.discharged_from, c.discharged_to)):
        if cond:
            items.append(cond)
    if c.icd.strip():
        items.append(Cond("main_diagnosis_code" if c.main_only else "diagnosis_code", "prefix",
                          c.icd.strip()))
    if c.diagnosis.strip():
        items.append(Cond("main_diagnosis_name" if c.main_only else "diagnosis_name",
                          "contains", c.diagnosis.strip()))
    return Group("and", items)


@dataclass
class Paging:
    page: int = 1
    page_size: int | None = None
    sort: str | None = None
    desc: bool | None = None


def _page_size(rt, size: int | None) -> int:
    st = rt.settings(SearchSettings)
    size = st.page_size if size is None else size
    if not 1 <= size <= st.max_page_size:
        raise QueryError(f"每页条数须在 1 到 {st.max_page_size} 之间")
    return size


def _exact_mrn(node: Node) -> str | None:
    """The MRN of an ``mrn eq`` condition at the top level (for the audit's MRN column)."""
    items = node.items if isinstance(node, Group) and node.op == "and" else [node]
    for i in items:
        if isinstance(i, Cond) and i.field == "mrn" and i.op == "eq" and isinstance(i.value, str):
            return i.value.strip()
    return None


def record_failure(rt, action: str, actor: audit.Actor, detail: dict[str, Any],
                   exc: Exception) -> None:
    """Audit a refused search (outcome ``failed``) with the reason, in its own transaction."""
    with rt.sessions() as s, s.begin():
        audit.record(s, rt, action, actor=actor, outcome="failed",
                     detail={**detail, "error": str(exc)})


def structured(rt, action: str, node: Node, paging: Paging, *, actor: audit.Actor, via: str,
               criteria: dict[str, Any]) -> ResultPage:
    """Run a simple or combined search (``action`` search.simple / search.combined)."""
    detail: dict[str, Any] = {"via": via, "criteria": criteria}
    try:
        validate(node)
        detail["query"] = describe(node)
        size = _page_size(rt, paging.page_size)
        sort, desc = check_sort(paging.sort, paging.desc)
        with rt.sessions() as s, s.begin():
            res = run_page(s, node, page=paging.page, page_size=size, sort=sort, desc=desc,
                           count_limit=rt.settings(SearchSettings).count_limit, tz=rt.tz)
            audit.record(s, rt, action, actor=actor, mrn=_exact_mrn(node), detail={
                **detail, "total": res.total, "capped": res.total_capped, "page": res.page,
                "sort": sort, "desc": desc, "shown": [h.admission_no for h in res.hits]})
        return res
    except QueryError as exc:
        record_failure(rt, action, actor, detail, exc)
        raise


def simple(rt, c: SimpleCriteria, paging: Paging, *, actor: audit.Actor, via: str) -> ResultPage:
    # a pinyin name lists names found by their common reading first, on every page
    # (results.run_page: reading tiers)
    return structured(rt, "search.simple", simple_query(c), paging, actor=actor, via=via,
                      criteria=c.given())


def combined(rt, node: Node, paging: Paging, *, actor: audit.Actor, via: str,
             saved_id: int | None = None) -> ResultPage:
    crit: dict[str, Any] = {"query": msgspec.to_builtins(node)}
    if saved_id is not None:
        crit["saved_id"] = saved_id
    return structured(rt, "search.combined", node, paging, actor=actor, via=via, criteria=crit)


def batch(rt, inp: batch_mod.BatchInput, kind: str, paging: Paging, *, actor: audit.Actor,
          via: str, source: str = "paste") -> batch_mod.BatchResult:
    """Run a batch search (audited ``search.batch`` with every number submitted)."""
    st = rt.settings(SearchSettings)
    detail: dict[str, Any] = {"via": via, "kind": kind, "source": source,
                              "numbers": inp.numbers[: st.batch_max_numbers]}
    try:
        inp = batch_mod.clean(inp, st.batch_max_numbers)
        detail["numbers"] = inp.numbers
        size = _page_size(rt, paging.page_size)
        with rt.sessions() as s, s.begin():
            res = batch_mod.run_batch(s, inp, kind, page=paging.page, page_size=size,
                                      sort=paging.sort, desc=bool(paging.desc),
                                      mrn_pattern=rt.config.core.mrn_pattern)
            audit.record(s, rt, "search.batch", actor=actor, detail={
                **detail, "found": res.found_numbers, "not_found": res.not_found,
                "admissions": res.total, "page": res.page,
                "shown": [h.hit.admission_no for h in res.hits]})
        return res
    except (batch_mod.BatchError, QueryError) as exc:
        record_failure(rt, "search.batch", actor, detail, exc)
        raise


# ---------------------------------------------------------------------------------------------
# Full text (the backend is another plugin, behind the search_fulltext hook)
# ---------------------------------------------------------------------------------------------


class FulltextHitOut(msgspec.Struct):
    admission_no: str
    mrn: str
    name: str
    discharged_at: dt.datetime | None
    department: str | None
    page_id: int | None
    page_seq: int | None
    page_type: str | None
    score: float
    snippet: str


class FulltextResult(msgspec.Struct):
    """``enabled`` is False when no full-text backend answers (全文检索未启用)."""

    enabled: bool
    query: str
    page: int
    page_size: int
    has_more: bool
    hits: list[FulltextHitOut]


def _allowed_hits(rt, s, user: StaffRef, raw: list, cache: dict[int, bool]) -> list:
    """The hits of ``raw`` whose record ``user`` may read (``decide``, not audited: the search
    event is), remembering each admission's answer in ``cache``."""
    out = []
    for h in raw:
        if h.admission_id not in cache:
            adm = s.get(Admission, h.admission_id)
            cache[h.admission_id] = adm is not None and permissions.decide(
                s, rt, user, adm, "view", record=False).allowed
        if cache[h.admission_id]:
            out.append(h)
    return out


def _search_permitted(rt, s, user: StaffRef, query: str, size: int, page: int) -> tuple[
        list, bool, bool, str]:
    """One page of hits the user may read (up to ``size`` + 1, to tell whether more follow),
    whether a backend answered, and how the hits were filtered.

    The records the user may read go into the backend's query (``permissions.readable`` ->
    ``search_fulltext(admissions=...)``), so refused pages take no place in a page of hits.
    Each hit is decided again before it is shown; if one is refused after all (a policy
    plugin without ``access_scope``, a backend that ignores the filter), the hits are read
    from the first in chunks and filtered here, so paging still counts permitted hits only."""
    flt = permissions.readable(s, rt, user, "view")
    cache: dict[int, bool] = {}
    offset = (page - 1) * size
    if flt is not None:
        raw = rt.pm.hook.search_fulltext(rt=rt, query=query, limit=size + 1, offset=offset,
                                         admissions=flt)
        if raw is None:
            return [], False, False, "query"
        raw = list(raw)
        ok = _allowed_hits(rt, s, user, raw, cache)
        if len(ok) == len(raw):
            return ok, True, len(ok) > size, "query"
    # decide hit by hit: read from the first hit, in chunks, until the page is full
    want, got, start = offset + size + 1, [], 0
    chunk = min(MAX_LIMIT, max(4 * (size + 1), 100))
    while len(got) < want and start < MAX_OFFSET:
        raw = rt.pm.hook.search_fulltext(rt=rt, query=query, limit=chunk, offset=start,
                                         admissions=flt)
        if raw is None:
            return [], False, False, "each"
        raw = list(raw)
        got += _allowed_hits(rt, s, user, raw, cache)
        if len(raw) < chunk:
            break
        start += chunk
    return got[offset:offset + size + 1], True, len(got) > offset + size, "each"


def fulltext(rt, query: str, page: int = 1, page_size: int | None = None, *,
             user: StaffRef, actor: audit.Actor, via: str) -> FulltextResult:
    """Full-text hits on pages of records ``user`` may read (``view``): a record the user
    may not read never shows, nor does it take a place in a page of hits or in ``has_more``
    (a hit on it would tell what its pages say)."""
    st = rt.settings(SearchSettings)
    query = (query or "").strip()
    detail: dict[str, Any] = {"via": via, "query": query, "page": page}
    try:
        if not query:
            raise QueryError("请输入要检索的文字")
        if len(query) > MAX_FULLTEXT_QUERY:
            raise QueryError(f"检索文字过长（最多 {MAX_FULLTEXT_QUERY} 字）")
        if page < 1:
            raise QueryError("页码须从 1 开始")
        size = st.fulltext_page_size if page_size is None else page_size
        if not 1 <= size <= st.max_page_size:
            raise QueryError(f"每页条数须在 1 到 {st.max_page_size} 之间")
        if (page - 1) * size > MAX_OFFSET - size - 1:
            raise QueryError("页码过大，请缩小检索范围")
    except QueryError as exc:
        record_failure(rt, "search.fulltext", actor, detail, exc)
        raise
    hits: list[FulltextHitOut] = []
    with rt.sessions() as s, s.begin():
        try:
            raw, enabled, has_more, how = _search_permitted(rt, s, user, query, size, page)
        except Exception as exc:  # the backend failed: audited, then the error goes up
            s.rollback()
            record_failure(rt, "search.fulltext", actor, detail, exc)
            raise
        raw = raw[:size]
        adm_ids = {h.admission_id for h in raw}
        page_ids = {h.page_id for h in raw if h.page_id is not None}
        adms = {a.id: a for a in s.execute(
            select(Admission.id, Admission.admission_no, Admission.discharged_at,
                   Admission.discharge_department, Patient.mrn, Patient.name)
            .join(Patient, Patient.id == Admission.patient_id)
            .where(Admission.id.in_(adm_ids)))} if adm_ids else {}
        pages = {p.id: p for p in s.execute(select(Page.id, Page.seq, Page.page_type)
                                            .where(Page.id.in_(page_ids)))} if page_ids else {}
        depts = department_names(s)
        for h in raw:
            a = adms.get(h.admission_id)
            if a is None:  # the index knows a record the database does not: skip it
                continue
            p = pages.get(h.page_id) if h.page_id is not None else None
            hits.append(FulltextHitOut(
                admission_no=a.admission_no, mrn=a.mrn, name=a.name,
                discharged_at=a.discharged_at,
                department=depts.get(a.discharge_department or "", a.discharge_department),
                page_id=h.page_id, page_seq=p.seq if p else None,
                page_type=p.page_type if p else None, score=float(h.score), snippet=h.snippet))
        audit.record(s, rt, "search.fulltext", actor=actor, detail={
            **detail, "enabled": enabled, "hits": len(hits), "filtered": how,
            "shown": [h.admission_no for h in hits]})
    return FulltextResult(enabled=enabled, query=query, page=page, page_size=size,
                          has_more=has_more, hits=hits)


# ---------------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------------


@dataclass
class Export:
    filename: str
    media_type: str
    body: bytes
    rows: int
    truncated: bool


def _file(title: str, fmt: str, headers: list[str], rows: list[list[Any]],
          tz: dt.tzinfo) -> tuple[str, bytes]:
    if fmt == "xlsx":
        return XLSX, to_xlsx(title, headers, rows, tz=tz)
    if fmt == "csv":
        return "text/csv; charset=utf-8", to_csv(headers, rows, tz=tz)
    raise QueryError("导出格式只能是 xlsx 或 csv")


def export_structured(rt, kind: str, node: Node, sort: str | None, desc: bool | None, fmt: str,
                      *, actor: audit.Actor, via: str, criteria: dict[str, Any]) -> Export:
    """Every match of a simple/combined search as xlsx or csv (audited ``search.export``)."""
    st = rt.settings(SearchSettings)
    detail: dict[str, Any] = {"via": via, "kind": kind, "criteria": criteria, "format": fmt}
    try:
        if fmt not in ("xlsx", "csv"):
            raise QueryError("导出格式只能是 xlsx 或 csv")
        validate(node)
        detail["query"] = describe(node)
        sort, desc = check_sort(sort, desc)
        with rt.sessions() as s, s.begin():
            hits = list(iter_all(s, node, sort=sort, desc=desc, max_rows=st.export_max_rows + 1,
                                  tz=rt.tz))
            truncated = len(hits) > st.export_max_rows
            hits = hits[: st.export_max_rows]
            media, body = _file("病案检索结果", fmt, EXPORT_HEADERS, [export_row(h) for h in hits],
                                rt.tz)
            audit.record(s, rt, "search.export", actor=actor, mrn=_exact_mrn(node), detail={
                **detail, "rows": len(hits), "truncated": truncated,
                "admission_nos": [h.admission_no for h in hits]})
    except QueryError as exc:
        record_failure(rt, "search.export", actor, detail, exc)
        raise
    name = f"病案检索_{dt.datetime.now(rt.tz):%Y%m%d%H%M%S}.{fmt}"
    return Export(name, media, body, len(hits), truncated)


def export_batch(rt, inp: batch_mod.BatchInput, kind: str, sort: str | None, desc: bool,
                 fmt: str, *, actor: audit.Actor, via: str) -> Export:
    """A batch result as a file: one row per found admission, then one per number not found."""
    st = rt.settings(SearchSettings)
    detail: dict[str, Any] = {"via": via, "kind": "batch", "number_kind": kind, "format": fmt,
                              "numbers": inp.numbers[: st.batch_max_numbers]}
    try:
        inp = batch_mod.clean(inp, st.batch_max_numbers)
        with rt.sessions() as s, s.begin():
            res, hits = batch_mod.all_rows(s, inp, kind, sort, desc, st.export_max_rows,
                                           rt.config.core.mrn_pattern)
            rows = [[bh.number, "找到", *export_row(bh.hit)] for bh in hits]
            rows += [[n, "未找到"] + [None] * len(EXPORT_HEADERS) for n in res.not_found]
            media, body = _file("批量检索结果", fmt, ["检索号码", "结果", *EXPORT_HEADERS], rows,
                                rt.tz)
            audit.record(s, rt, "search.export", actor=actor, detail={
                **detail, "rows": len(rows), "not_found": res.not_found,
                "admission_nos": [bh.hit.admission_no for bh in hits]})
    except (batch_mod.BatchError, QueryError) as exc:
        record_failure(rt, "search.export", actor, detail, exc)
        raise
    name = f"批量检索_{dt.datetime.now(rt.tz):%Y%m%d%H%M%S}.{fmt}"
    return Export(name, media, body, len(rows), len(hits) >= st.export_max_rows)


ACTION_LABELS = {"search.simple": "简单检索", "search.combined": "组合检索",
                 "search.batch": "批量检索", "search.fulltext": "全文检索",
                 "search.export": "导出检索结果", "search.saved.save": "保存检索条件",
                 "search.saved.delete": "删除检索条件", "search.reindex": "重建检索索引"}

__all__ = ["Export", "FulltextResult", "Paging", "SimpleCriteria", "batch", "combined",
           "export_batch", "export_structured", "fulltext", "record_failure", "simple",
           "simple_query", "structured"]


# ---------------------------------------------------------------------------------------------
# Full text per record (the web page): one line per record, its matching pages under it
# ---------------------------------------------------------------------------------------------

RECORD_HITS_READ = 1000  # page hits read per query to group them by record and count them


class PageHitOut(msgspec.Struct):
    page_id: int | None
    page_seq: int | None
    page_type: str | None
    snippet: str


class RecordHitOut(msgspec.Struct):
    admission_no: str
    mrn: str
    name: str
    discharged_at: dt.datetime | None
    department: str | None
    score: float
    pages: list[PageHitOut]


class FulltextRecords(msgspec.Struct):
    """Records whose pages hold the text, best first. ``total`` counts records (and
    ``total_pages`` page hits) among the first ``RECORD_HITS_READ`` page hits
    (``capped``: more may exist)."""

    enabled: bool
    query: str
    page: int
    page_size: int
    pages: int
    total: int
    total_pages: int
    capped: bool
    records: list[RecordHitOut]


def fulltext_records(rt, query: str, page: int = 1, page_size: int | None = None, *,
                     user: StaffRef, actor: audit.Actor, via: str, discharged_from: str = "",
                     discharged_to: str = "", department: str = "") -> FulltextRecords:
    """Full-text hits grouped per record, with a total and optional discharge date range and
    discharge department; only records ``user`` may read (``view``) count or show."""
    from bingan_search.query import parse_day

    st = rt.settings(SearchSettings)
    query = (query or "").strip()
    department = (department or "").strip()
    detail: dict[str, Any] = {"via": via, "query": query, "page": page, "per": "record",
                              "discharged_from": discharged_from or None,
                              "discharged_to": discharged_to or None,
                              "department": department or None}
    try:
        if not query:
            raise QueryError("请输入要检索的文字")
        if len(query) > MAX_FULLTEXT_QUERY:
            raise QueryError(f"检索文字过长（最多 {MAX_FULLTEXT_QUERY} 字）")
        if page < 1:
            raise QueryError("页码须从 1 开始")
        size = st.fulltext_page_size if page_size is None else page_size
        if not 1 <= size <= st.max_page_size:
            raise QueryError(f"每页条数须在 1 到 {st.max_page_size} 之间")
        lo = parse_day(discharged_from, "出院日期（起）") if discharged_from.strip() else None
        hi = parse_day(discharged_to, "出院日期（止）") if discharged_to.strip() else None
        if lo and hi and hi < lo:
            raise QueryError("出院日期：结束日期早于开始日期")
    except QueryError as exc:
        record_failure(rt, "search.fulltext", actor, detail, exc)
        raise
    start = dt.datetime.combine(lo, dt.time(), rt.tz) if lo else None
    end = dt.datetime.combine(hi + dt.timedelta(days=1), dt.time(), rt.tz) if hi else None
    with rt.sessions() as s, s.begin():
        depts = department_names(s)
        if department and department not in depts:
            # a department may be given by its name too
            code = next((c for c, n in depts.items() if n == department), None)
            if code is None:
                s.rollback()
                exc = QueryError(f"出院科室 {department} 不存在")
                record_failure(rt, "search.fulltext", actor, detail, exc)
                raise exc
            department = code
        flt = permissions.readable(s, rt, user, "view")
        raw: list = []
        enabled = True
        offset = 0
        try:
            while len(raw) < RECORD_HITS_READ:
                want = min(MAX_LIMIT, RECORD_HITS_READ - len(raw))
                got = rt.pm.hook.search_fulltext(rt=rt, query=query, limit=want, offset=offset,
                                                 admissions=flt)
                if got is None:
                    enabled = False
                    break
                got = list(got)
                raw += got
                if len(got) < want:
                    break
                offset += len(got)
        except Exception as exc:  # the backend failed: audited, then the error goes up
            s.rollback()
            record_failure(rt, "search.fulltext", actor, detail, exc)
            raise
        capped = len(raw) >= RECORD_HITS_READ
        # every record is decided again as the viewer would (the filter went into the query,
        # but a backend may ignore it): a refused record neither shows nor counts
        raw = _allowed_hits(rt, s, user, raw, {})
        groups: dict[int, list] = {}
        for h in raw:
            groups.setdefault(h.admission_id, []).append(h)
        adms = {}
        ids = list(groups)
        for i in range(0, len(ids), 500):
            q = (select(Admission.id, Admission.admission_no, Admission.discharged_at,
                        Admission.discharge_department, Patient.mrn, Patient.name)
                 .join(Patient, Patient.id == Admission.patient_id)
                 .where(Admission.id.in_(ids[i:i + 500])))
            if start is not None:
                q = q.where(Admission.discharged_at >= start)
            if end is not None:
                q = q.where(Admission.discharged_at < end)
            if department:
                q = q.where(Admission.discharge_department == department)
            adms.update({a.id: a for a in s.execute(q)})
        kept = [i for i in ids if i in adms]
        pages_n = max(1, -(-len(kept) // size))
        shown = kept[(page - 1) * size:page * size]
        page_ids = {h.page_id for i in shown for h in groups[i] if h.page_id is not None}
        pinfo = {p.id: p for p in s.execute(select(Page.id, Page.seq, Page.page_type)
                                            .where(Page.id.in_(page_ids)))} if page_ids else {}
        records_out = []
        for i in shown:
            a = adms[i]
            hits = sorted(groups[i], key=lambda h: (pinfo[h.page_id].seq if h.page_id in pinfo
                                                    else 0))
            records_out.append(RecordHitOut(
                admission_no=a.admission_no, mrn=a.mrn, name=a.name,
                discharged_at=a.discharged_at,
                department=depts.get(a.discharge_department or "", a.discharge_department),
                score=float(max(h.score for h in groups[i])),
                pages=[PageHitOut(h.page_id, pinfo[h.page_id].seq if h.page_id in pinfo else None,
                                  pinfo[h.page_id].page_type if h.page_id in pinfo else None,
                                  h.snippet) for h in hits]))
        audit.record(s, rt, "search.fulltext", actor=actor, detail={
            **detail, "enabled": enabled, "records": len(kept), "capped": capped,
            "shown": [r.admission_no for r in records_out]})
    return FulltextRecords(enabled=enabled, query=query, page=page, page_size=size,
                           pages=pages_n, total=len(kept),
                           total_pages=sum(len(groups[i]) for i in kept), capped=capped,
                           records=records_out)

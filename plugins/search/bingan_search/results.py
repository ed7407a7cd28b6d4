"""Running a compiled condition: capped count, one sorted page, the rows shown and exported."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import time
import weakref
from typing import Any, Iterator

import msgspec
from sqlalchemy import String, false, func, select, text, type_coerce
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from bingan.core.staff import department_names
from bingan.core.records import DISCHARGE_WAYS
from bingan_search.query import A, D, P

# Sortable columns (whitelist): key -> (label, column).
SORTS: dict[str, tuple[str, Any]] = {
    "discharged_at": ("出院日期", A.discharged_at),
    "admitted_at": ("入院日期", A.admitted_at),
    "mrn": ("病案号", P.mrn),
    "name": ("姓名", P.name_pinyin),
    "admission_no": ("住院号", A.admission_no),
    "visit_no": ("住院次数", A.visit_no),
    "department": ("出院科室", A.discharge_department),
    "age": ("年龄", A.age_years),
    "los": ("住院天数", A.los_days),
}
DEFAULT_SORT = "discharged_at"


class Hit(msgspec.Struct):
    """One admission in a result list (front-page index data, not the record itself)."""

    admission_no: str
    mrn: str
    name: str
    sex: str
    age_years: int | None
    visit_no: int
    admitted_at: dt.datetime
    discharged_at: dt.datetime | None
    department_code: str | None
    department: str | None
    main_diagnosis_code: str | None
    main_diagnosis: str | None
    discharge_way: str | None
    discharge_way_label: str | None
    los_days: int | None
    pages: int = 0  # current page images: 0 = not digitized (the paper record only)


class ResultPage(msgspec.Struct):
    """One page of results. ``total`` is exact unless ``total_capped`` (then "at least")."""

    total: int
    total_capped: bool
    page: int
    page_size: int
    pages: int
    sort: str
    desc: bool
    hits: list[Hit]


EXPORT_HEADERS = ["病案号", "姓名", "性别", "年龄", "住院号", "住院次数", "入院时间", "出院时间",
                  "出院科室", "主要诊断编码", "主要诊断", "离院方式", "住院天数"]
SEX_LABELS = {"M": "男", "F": "女", "U": "未知"}


def export_row(h: Hit) -> list[Any]:
    return [h.mrn, h.name, SEX_LABELS.get(h.sex, h.sex), h.age_years, h.admission_no, h.visit_no,
            h.admitted_at, h.discharged_at, h.department or h.department_code,
            h.main_diagnosis_code, h.main_diagnosis, h.discharge_way_label, h.los_days]


def check_sort(sort: str | None, desc: bool | None) -> tuple[str, bool]:
    from bingan_search.query import QueryError

    sort = sort or DEFAULT_SORT
    if sort not in SORTS:
        raise QueryError(f"不能按 {sort!r} 排序（可用：{'、'.join(SORTS)}）")
    return sort, (True if desc is None else desc)


NULLABLE_SORTS = {"discharged_at", "department", "age", "los"}
PATIENT_SORTS = {"mrn", "name"}
# Sorts with an index on admission: a large result is read in that order (see run_page).
INDEXED_SORTS = {"discharged_at", "admitted_at", "admission_no", "department"}


def _order(sort: str, desc: bool) -> list[Any]:
    """Empty values last in both directions; ties broken by admission id in the same
    direction (an index on the sort column already yields that order on SQLite)."""
    col = SORTS[sort][1]
    if desc:
        key = col.desc().nulls_last() if sort in NULLABLE_SORTS else col.desc()
        return [key, A.id.desc()]
    key = col.asc().nulls_last() if sort in NULLABLE_SORTS else col.asc()
    return [key, A.id.asc()]


_ADM = A.id.table
_JOIN = _ADM.join(P.id.table, P.id == A.patient_id)
_ROW_COLS = (A.id, A.admission_no, A.visit_no, A.admitted_at, A.discharged_at,
             A.discharge_department, A.discharge_way, A.age_years, A.los_days,
             P.mrn, P.name, P.sex)


def base_query(where: ColumnElement[bool]):
    return select(A.id).select_from(_ADM).where(where)


def count(session: Session, where: ColumnElement[bool], limit: int,
          drive: Any = None) -> tuple[int, bool]:
    """How many admissions match, counting at most ``limit`` (then capped=True).

    With a ``drive`` (query.driver) the count streams from that condition's index and reads
    a bounded number of rows: up to ``limit + 1`` admissions of matching patients, or up to
    3 x (``limit`` + 1) matching diagnosis rows, whose distinct admissions settle the answer
    unless an admission comes three times on average (then the plain count decides)."""
    if drive is not None:
        src = drive.ids.subquery("drv")
        if drive.rest is None:
            rows_q = select(src.c.id)
        else:
            rest = drive.rest
            if session.get_bind().dialect.name == "sqlite":
                # hidden from the index choice, or SQLite reorders the join to start from
                # (say) a year of discharges instead of the driver's few rows
                rest = func.coalesce(rest, false())
            rows_q = select(A.id).select_from(src.join(_ADM, A.id == src.c.id)).where(rest)
        budget = limit + 1 if drive.on_patient else 3 * (limit + 1)
        sub = rows_q.limit(budget).subquery()
        if drive.on_patient:  # one row per admission already
            rows = distinct = session.scalar(select(func.count()).select_from(sub)) or 0
        else:
            rows, distinct = session.execute(
                select(func.count(), func.count(sub.c[0].distinct()))).one()
        if distinct > limit:
            return limit, True
        if rows < budget:
            return distinct, False
    sub = base_query(where).limit(limit + 1).subquery()
    n = session.scalar(select(func.count()).select_from(sub)) or 0
    return (limit, True) if n > limit else (n, False)


_work_mem: "weakref.WeakKeyDictionary[Any, int]" = weakref.WeakKeyDictionary()


def pg_hash_capacity(session: Session) -> int:
    """About how many ids a hashed IN-set holds within PostgreSQL's work_mem (a larger set is
    not hashed: it is then scanned linearly for every row tested)."""
    bind = session.get_bind()
    if bind not in _work_mem:
        raw = str(session.execute(text("SELECT current_setting('work_mem')")).scalar())
        units = {"kB": 1024, "MB": 1024**2, "GB": 1024**3}
        num = "".join(ch for ch in raw if ch.isdigit()) or "4096"
        unit = raw[len(num):].strip() or "kB"
        _work_mem[bind] = int(num) * units.get(unit, 1024)
    return _work_mem[bind] // 80  # bytes per entry of a hash of int4, with overhead


_adm_count: "weakref.WeakKeyDictionary[Any, tuple[float, int]]" = weakref.WeakKeyDictionary()
COUNT_TTL = 60.0  # seconds the admissions estimate is reused
# What a per-row probe costs over what one row of a materialized set costs (measured with
# bench/search.py on 3 million admissions: an index seek per admission read, 1.5-4.5 us on
# SQLite, 2-4 us on PostgreSQL, against 0.3 us per set row).
PROBE_COST_RATIO = {"sqlite": 8.0, "postgresql": 10.0}


def admissions_estimate(session: Session) -> int:
    """About how many admissions there are (the largest id; cached a minute per engine)."""
    key = session.get_bind()
    now = time.monotonic()
    hit = _adm_count.get(key)
    if hit and now - hit[0] < COUNT_TTL:
        return hit[1]
    n = int(session.scalar(select(func.max(A.id))) or 0)
    _adm_count[key] = (now, n)
    return n


def probe_threshold(session: Session, rows: int) -> int:
    """The set size above which a page of ``rows`` rows read in sort order is cheaper with a
    probe per admission than with the condition's set.

    Walking the sort index until ``rows`` matches costs about rows x N / S probes (N
    admissions, S of them in the set), the set S rows: the two are equal at
    S = sqrt(rows x N x ratio). At that size either way costs about the same few
    milliseconds, and below or above it the cheaper way is taken. On PostgreSQL the set must
    also fit work_mem to be hashed (``pg_hash_capacity``)."""
    dialect = session.get_bind().dialect.name
    n = admissions_estimate(session)
    t = int(math.sqrt(max(1, rows) * max(1, n) * PROBE_COST_RATIO.get(dialect, 8.0)))
    if dialect == "postgresql":
        t = min(t, pg_hash_capacity(session))
    return t


def custom_plans(session: Session) -> None:
    """On PostgreSQL, plan every statement of this transaction for its own values.

    psycopg prepares a statement on the server once it has run five times on a connection,
    and after five more PostgreSQL may switch to a generic plan that does not know the
    values: it cannot turn ``LIKE 'K35%'`` into an index range nor see that a LIMIT ends a
    walk early. Searches repeat the same statement shapes all day, and the generic plan of
    a search can be a hundred times slower (bench/search.py); planning one costs well under a
    millisecond."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


def page_ids(session: Session, where: ColumnElement[bool], *, sort: str, desc: bool,
             offset: int, limit: int, mode: str = "fenced", hide: bool = True) -> list[int]:
    """Ids of one page, read one of three ways:

    - ``fenced``: the matches are collected by the condition's own best plan and then sorted
      (the sort sits outside an ``OFFSET 0`` subquery, which neither planner flattens, so
      neither walks a sort index hoping to meet matches early). Right for small results.
    - ``ordered``: the condition is hidden from the index choice (``coalesce(cond, false)``),
      so the database walks the sort column's index and tests each admission, stopping after
      ``offset + limit`` hits. With ``hide`` False (PostgreSQL with several conditions) the
      planner gets the plain ORDER BY ... LIMIT query and chooses itself. A semi-join is
      tested against its set (materialized once, about 0.3 us a row) or by an index seek
      per admission (1.5-5 us), which beats collecting a set of hundreds of thousands: for a
      single semi-join ``run_page`` measures the set (``probe_threshold``), with several
      conditions a broad one (``query.is_broad``) is probed.
    - ``natural``: the planner decides (a date range on the sort column is read in order).
    """
    frm = _JOIN if sort in PATIENT_SORTS else _ADM
    if mode == "fenced":
        key = SORTS[sort][1]
        inner = (select(A.id.label("id"), key.label("k")).select_from(frm).where(where)
                 .offset(0).subquery("m"))
        if desc:
            order = [inner.c.k.desc().nulls_last() if sort in NULLABLE_SORTS
                     else inner.c.k.desc(), inner.c.id.desc()]
        else:
            order = [inner.c.k.asc().nulls_last() if sort in NULLABLE_SORTS
                     else inner.c.k.asc(), inner.c.id.asc()]
        q = select(inner.c.id).order_by(*order).offset(offset).limit(limit)
        return list(session.scalars(q))
    cond = func.coalesce(where, false()) if (mode == "ordered" and hide) else where
    q = select(A.id).select_from(frm).where(cond)
    q = q.order_by(*_order(sort, desc)).offset(offset).limit(limit)
    return list(session.scalars(q))


def choose_mode(capped: bool, sort: str, date_bounds: set[str]) -> str:
    """How to read a page (see ``page_ids``): a result within ``count_limit`` is collected
    and sorted; a larger one is read in sort-index order unless an admission date bounds it
    (then the date index leads: in order when it is the sort column, else collected)."""
    if not capped:
        return "fenced"
    if date_bounds:
        return "natural" if sort in date_bounds else "fenced"
    return "ordered" if sort in INDEXED_SORTS else "fenced"


def _row_query(ids: list[int]):
    """The shown columns of admissions ``ids`` with their main diagnosis (the first of kind
    ``main``) and their current page count, in one statement: a search pays one round trip
    for its rows instead of three (each correlated subquery is an index seek per row)."""
    from bingan.core.models import Page

    PG = Page.__table__.c
    first_main = (select(D.code, D.name).where(D.admission_id == A.id, D.kind == "main")
                  .order_by(D.seq, D.id).limit(1).correlate(_ADM))
    pages = (select(func.count()).select_from(PG.id.table)
             .where(PG.admission_id == A.id, PG.replaced_by_id.is_(None))
             .correlate(_ADM).scalar_subquery())
    return (select(*_ROW_COLS,
                   first_main.with_only_columns(D.code).scalar_subquery().label("main_code"),
                   first_main.with_only_columns(D.name).scalar_subquery().label("main_name"),
                   pages.label("page_count"))
            .select_from(_JOIN).where(A.id.in_(ids)))


def _hits(rows: list[Any], depts: dict[str, str]) -> list[Hit]:
    return [Hit(
        admission_no=r.admission_no, mrn=r.mrn, name=r.name, sex=r.sex,
        age_years=r.age_years, visit_no=r.visit_no, admitted_at=r.admitted_at,
        discharged_at=r.discharged_at, department_code=r.discharge_department,
        department=depts.get(r.discharge_department or ""), main_diagnosis_code=r.main_code,
        main_diagnosis=r.main_name, discharge_way=r.discharge_way,
        discharge_way_label=DISCHARGE_WAYS.get(r.discharge_way or ""), los_days=r.los_days,
        pages=r.page_count or 0,
    ) for r in rows]


def hits_for(session: Session, ids: list[int], depts: dict[str, str] | None = None) -> list[Hit]:
    """The rows of ``ids``, in that order, with the main diagnosis and department name."""
    if not ids:
        return []
    found = {r.id: r for r in session.execute(_row_query(ids))}
    depts = department_names(session) if depts is None else depts
    return _hits([found[i] for i in ids if i in found], depts)


# Sorts on admission columns whose values Python orders as the databases do (numbers and
# times; text order depends on the database collation).
COLLECT_SORTS = {"discharged_at", "admitted_at", "visit_no", "age", "los"}


def indexed_anchor(node: Any) -> bool:
    """Whether a top-level ``and`` member is an admission date range, department or admission
    number: an index of admissions bounds the result and carries its sort date."""
    from bingan_search.query import _ANCHOR_FIELDS, Cond, Group

    items = node.items if isinstance(node, Group) and node.op == "and" else [node]
    return any(isinstance(i, Cond) and i.field in _ANCHOR_FIELDS
               and i.op not in ("ne", "is_null", "not_null") for i in items)


def collect(session: Session, where: ColumnElement[bool], limit: int, sort: str,
            desc: bool) -> tuple[int, bool, list[int] | None]:
    """Count by collecting: the ids and sort keys of up to ``limit + 1`` matches in one read.
    Within ``limit`` they are the whole result, sorted here in the documented order (empty
    values last, ties by id in the same direction), so the page needs no second read of the
    same rows; beyond it the count is capped and the ids are None (the page is read in
    order as usual)."""
    key = SORTS[sort][1]
    if session.get_bind().dialect.name == "sqlite" and sort in ("discharged_at", "admitted_at"):
        # SQLite stores times as fixed-width text that sorts in time order (the searches
        # compare it so too): sort the text, and skip parsing thousands of times
        key = type_coerce(key, String())
    rows = session.execute(select(A.id, key).select_from(_ADM).where(where)
                           .limit(limit + 1)).all()
    if len(rows) > limit:
        return limit, True, None
    have = sorted((r for r in rows if r[1] is not None), key=lambda r: (r[1], r[0]),
                  reverse=desc)
    empty = sorted((r for r in rows if r[1] is None), key=lambda r: r[0], reverse=desc)
    return len(rows), False, [r[0] for r in have + empty]


class _Tier:
    """One tier of a result (all of it, or one reading tier of a pinyin name): its capped
    count and how to read its pages (see ``run_page``)."""

    def __init__(self, session: Session, node: Any, ctx: Any, *, sort: str, desc: bool,
                 count_limit: int) -> None:
        from bingan_search.query import (
            compile_node, default_probe, driver, is_broad, probe_broad,
        )

        self.session, self.node, self.ctx, self.sort, self.desc = session, node, ctx, sort, desc
        self.where = compile_node(ctx, node, correlated=default_probe(node))
        self.drive = driver(ctx, node)
        self.collected: list[int] | None = None
        if self.drive is None:
            # the count and the page read admissions (by an index of theirs when one leads):
            # broad semi-joins are probed per admission read, not collected as a set
            self.where = compile_node(dataclasses.replace(ctx, fence=is_broad), node,
                                      correlated=probe_broad(node))
            if sort in COLLECT_SORTS and indexed_anchor(node):
                self.total, self.capped, self.collected = collect(
                    session, self.where, count_limit, sort, desc)
            else:
                self.total, self.capped = count(session, self.where, count_limit)
        else:
            self.total, self.capped = count(session, self.where, count_limit, self.drive)

    def ids(self, offset: int, limit: int) -> list[int]:
        """``limit`` ids of this tier from ``offset``, in the chosen order."""
        from bingan_search.query import (
            _never, always_probe, bounded_dates, compile_node, probe_broad,
        )

        if self.collected is not None:
            return self.collected[offset:offset + limit]
        session, node, ctx, where = self.session, self.node, self.ctx, self.where
        mode = choose_mode(self.capped, self.sort, bounded_dates(node))
        hide = True
        if mode == "ordered":
            if self.drive is not None and self.drive.rest is None:
                # one semi-join: its set (materialized or hashed once) when it is small, else
                # an index probe per admission read (fenced on PostgreSQL, which would
                # otherwise build the whole set as a hashed SubPlan), as ``probe_threshold``
                # says; the set is measured by reading at most threshold + 1 rows of the
                # condition's index
                cut = probe_threshold(session, offset + limit)
                sub = self.drive.keys.limit(cut + 1).subquery()
                small = (session.scalar(select(func.count()).select_from(sub)) or 0) <= cut
                if small:
                    where = compile_node(ctx, node, correlated=_never)
                else:
                    where = compile_node(dataclasses.replace(ctx, fence=lambda c: True), node,
                                         correlated=always_probe)
            elif ctx.dialect != "postgresql":
                # broad semi-joins probed row by row, narrow ones as sets (a b-tree each)
                where = compile_node(ctx, node, correlated=probe_broad(node))
            else:
                hide = False  # several conditions: PostgreSQL's own ORDER BY ... LIMIT plan
        return page_ids(session, where, sort=self.sort, desc=self.desc, offset=offset,
                        limit=limit, mode=mode, hide=hide)


def _tiers(session: Session, node: Any, tz: dt.tzinfo) -> list[Any]:
    """The compilation contexts of a result's tiers, in the order they are listed: one for
    most queries; for a pinyin name, names found by their common reading and then those
    only a rarer reading finds (``query.ranked_tiers``), each in the chosen order."""
    from bingan_search.query import NAME_TIERS, Ctx, ranked_tiers

    ctx = Ctx(tz, dialect=session.get_bind().dialect.name)
    if not ranked_tiers(node):
        return [ctx]
    return [dataclasses.replace(ctx, name_tier=t) for t in NAME_TIERS]


def run_page(session: Session, node: Any, *, page: int, page_size: int, sort: str,
             desc: bool, count_limit: int, tz: dt.tzinfo) -> ResultPage:
    """The (capped) count and one sorted page of a validated query tree (read as
    ``choose_mode`` says). Pages beyond the counted range are refused.

    A pinyin name is listed in reading tiers (``_tiers``): the pages run through the first
    tier, then the next, so page 2 continues page 1's order whatever the page size. A tier
    whose count reaches the cap ends the result (no page reaches further)."""
    from bingan_search.query import QueryError

    if page < 1:
        raise QueryError("页码须从 1 开始")
    custom_plans(session)
    tiers: list[_Tier] = []
    for ctx in _tiers(session, node, tz):
        tier = _Tier(session, node, ctx, sort=sort, desc=desc,
                     count_limit=count_limit - sum(t.total for t in tiers))
        tiers.append(tier)
        if tier.capped:
            break
    total, capped = sum(t.total for t in tiers), any(t.capped for t in tiers)
    pages = max(1, -(-total // page_size))
    if page > pages:
        raise QueryError(f"页码 {page} 超出范围（共 {pages} 页）")
    ids: list[int] = []
    offset, want = (page - 1) * page_size, page_size
    for tier in tiers:
        if want <= 0:
            break
        if offset >= tier.total:
            offset -= tier.total
            continue
        # an exact tier ends at its count; the last one (a capped count means "at least")
        # fills the page as a result without tiers does
        last = tier is tiers[-1]
        got = tier.ids(offset, want if last else min(want, tier.total - offset))
        ids += got
        want -= len(got)
        offset = 0
    return ResultPage(total=total, total_capped=capped, page=page, page_size=page_size,
                      pages=pages, sort=sort, desc=desc, hits=hits_for(session, ids))


def iter_all(session: Session, node: Any, *, sort: str, desc: bool, max_rows: int,
             tz: dt.tzinfo, chunk: int = 1000) -> Iterator[Hit]:
    """Every match of a validated tree in order (in reading tiers as ``run_page`` lists
    them), up to ``max_rows`` (exports)."""
    from bingan_search.query import compile_node, default_probe

    custom_plans(session)
    depts = department_names(session)
    left = max_rows
    for ctx in _tiers(session, node, tz):
        if left <= 0:
            break
        where = compile_node(ctx, node, correlated=default_probe(node))
        ids = page_ids(session, where, sort=sort, desc=desc, offset=0, limit=left,
                       mode="fenced")
        left -= len(ids)
        for i in range(0, len(ids), chunk):
            yield from hits_for(session, ids[i:i + chunk], depts)

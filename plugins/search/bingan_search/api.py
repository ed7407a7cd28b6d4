"""JSON API for every search (``/api/search/...``), described in ``/schema``.

POST bodies are JSON; like every POST of the app they carry the CSRF token in the
``x-csrftoken`` header (what pages give htmx in ``hx-headers``; a script outside the browser
reads the ``bingan_csrf`` cookie, which is HttpOnly to pages). Errors answer 400 with
``{"detail": "..."}`` in Chinese.
"""

from __future__ import annotations

import msgspec
from litestar import Request, delete, get, post
from litestar.exceptions import ValidationException
from litestar.params import FromPath, JSONBody

from bingan.core import audit
from bingan.core.web.render import in_thread
from bingan.core.web.security import actor
from bingan_search import batch as batch_mod
from bingan_search import saved, service
from bingan_search.query import FIELDS, OP_LABELS, Node, QueryError, decode, describe, encode
from bingan_search.results import SORTS, Hit
from bingan_search.web import field_choices


class Paged(msgspec.Struct, kw_only=True):
    page: int = 1
    page_size: int | None = None
    sort: str | None = None  # discharged_at admitted_at mrn name admission_no visit_no ...
    desc: bool | None = None


class SimpleRequest(Paged, forbid_unknown_fields=True, kw_only=True):
    """Simple search (M3): every given field must hold (see SimpleCriteria)."""

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


class CombinedRequest(Paged, forbid_unknown_fields=True, kw_only=True):
    """Combined search (M4): a query tree, or the id of a saved query."""

    query: Node | None = None
    saved_id: int | None = None


class BatchRequest(Paged, forbid_unknown_fields=True, kw_only=True):
    """Batch search (M5): admission numbers and/or MRNs."""

    numbers: list[str]
    kind: batch_mod.BatchKind = "auto"


class FulltextRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    query: str
    page: int = 1
    page_size: int | None = None


class SearchOut(msgspec.Struct):
    """A page of a simple or combined search."""

    description: str
    total: int
    total_capped: bool
    page: int
    page_size: int
    pages: int
    sort: str
    desc: bool
    hits: list[Hit]


class OpOut(msgspec.Struct):
    op: str
    label: str


class FieldOut(msgspec.Struct):
    name: str
    label: str
    group: str
    kind: str
    ops: list[OpOut]
    choices: dict[str, str] | None
    hint: str


class SaveRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str
    query: Node
    shared: bool = False


def _out(node: Node, res) -> SearchOut:
    return SearchOut(description=describe(node), total=res.total, total_capped=res.total_capped,
                     page=res.page, page_size=res.page_size, pages=res.pages, sort=res.sort,
                     desc=res.desc, hits=res.hits)


def _paging(p: Paged) -> service.Paging:
    return service.Paging(page=p.page, page_size=p.page_size, sort=p.sort, desc=p.desc)


@post("/api/search/simple", opt={"permission": "search.use"}, status_code=200)
@in_thread
def api_simple(request: Request, data: JSONBody[SimpleRequest]) -> SearchOut:
    """Simple search: name (Chinese prefix, or pinyin / initials), MRN, admission number,
    admission/discharge date ranges, ICD-10 code prefix, diagnosis name (audited)."""
    rt = request.app.state.rt
    crit = msgspec.convert({k: getattr(data, k) for k in service.SimpleCriteria.__struct_fields__},
                           service.SimpleCriteria)
    try:
        res = service.simple(rt, crit, _paging(data), actor=actor(request), via="api")
    except QueryError as exc:
        raise ValidationException(str(exc)) from exc
    return _out(service.simple_query(crit), res)


@post("/api/search/combined", opt={"permission": "search.use"}, status_code=200)
@in_thread
def api_combined(request: Request, data: JSONBody[CombinedRequest]) -> SearchOut:
    """Combined search over front-page fields with and/or/not (audited)."""
    rt = request.app.state.rt
    try:
        node = data.query
        if data.saved_id is not None:
            with rt.sessions() as s:
                node = decode(saved.get(s, data.saved_id, request.state.staff.staff_no).query_json)
        if node is None:
            raise QueryError("请给出 query 或 saved_id")
        res = service.combined(rt, node, _paging(data), actor=actor(request), via="api",
                               saved_id=data.saved_id)
    except QueryError as exc:
        raise ValidationException(str(exc)) from exc
    return _out(node, res)


@post("/api/search/batch", opt={"permission": "search.use"}, status_code=200)
@in_thread
def api_batch(request: Request, data: JSONBody[BatchRequest]) -> batch_mod.BatchResult:
    """Batch search: found admissions and the numbers not found (audited)."""
    rt = request.app.state.rt
    try:
        return service.batch(rt, batch_mod.BatchInput(list(data.numbers)), data.kind,
                             _paging(data), actor=actor(request), via="api")
    except (QueryError, batch_mod.BatchError) as exc:
        raise ValidationException(str(exc)) from exc


@post("/api/search/fulltext", opt={"permission": "search.use"}, status_code=200)
@in_thread
def api_fulltext(request: Request, data: JSONBody[FulltextRequest]) -> service.FulltextResult:
    """Full-text search through the enabled backend; ``enabled`` is false when there is none
    (audited)."""
    rt = request.app.state.rt
    try:
        return service.fulltext(rt, data.query, data.page, data.page_size,
                                user=request.state.staff, actor=actor(request),
                                via="api")
    except QueryError as exc:
        raise ValidationException(str(exc)) from exc


@get("/api/search/fields", opt={"permission": "search.use"})
@in_thread
def api_fields(request: Request) -> list[FieldOut]:
    """The fields a combined query may use, with their operators and code lists."""
    rt = request.app.state.rt
    return [FieldOut(name=f.name, label=f.label, group=f.group, kind=f.kind,
                     ops=[OpOut(o, OP_LABELS[o]) for o in f.ops],
                     choices=field_choices(rt, f), hint=f.hint) for f in FIELDS.values()]


@get("/api/search/sorts", opt={"permission": "search.use"})
async def api_sorts() -> dict[str, str]:
    """Sortable columns: key -> label."""
    return {k: v[0] for k, v in SORTS.items()}


@get("/api/search/saved", opt={"permission": "search.use"})
@in_thread
def api_saved_list(request: Request) -> list[saved.SavedOut]:
    """The caller's saved queries and those shared by others."""
    rt = request.app.state.rt
    staff_no = request.state.staff.staff_no
    with rt.sessions() as s:
        return [saved.to_out(r, staff_no) for r in saved.visible(s, staff_no)]


@post("/api/search/saved", opt={"permission": "search.use"}, status_code=201)
@in_thread
def api_saved_create(request: Request, data: JSONBody[SaveRequest]) -> saved.SavedOut:
    """Save (or replace) a query under a name."""
    rt = request.app.state.rt
    staff_no = request.state.staff.staff_no
    try:
        with rt.sessions() as s, s.begin():
            row = saved.save(s, staff_no, data.name, data.query, data.shared)
            audit.record(s, rt, "search.saved.save", actor=actor(request), detail={
                "id": row.id, "name": row.name, "shared": data.shared,
                "query": encode(data.query), "via": "api"})
            return saved.to_out(row, staff_no)
    except QueryError as exc:
        raise ValidationException(str(exc)) from exc


@delete("/api/search/saved/{query_id:int}", opt={"permission": "search.use"}, status_code=204)
@in_thread
def api_saved_delete(request: Request, query_id: FromPath[int]) -> None:
    """Delete one of the caller's saved queries."""
    rt = request.app.state.rt
    try:
        with rt.sessions() as s, s.begin():
            row = saved.delete(s, query_id, request.state.staff.staff_no)
            audit.record(s, rt, "search.saved.delete", actor=actor(request),
                         detail={"id": query_id, "name": row.name, "via": "api"})
    except QueryError as exc:
        raise ValidationException(str(exc)) from exc


ROUTES = [api_simple, api_combined, api_batch, api_fulltext, api_fields, api_sorts,
          api_saved_list, api_saved_create, api_saved_delete]

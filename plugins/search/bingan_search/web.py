"""Search pages (简单检索 / 组合检索 / 批量检索 / 全文检索) and the result export.

Pages answer a full page, or only the result block to htmx (``HX-Request``), pushing a
bookmarkable URL (percent-encoded). Every search, page turn and export is audited by
``service``. Opening a record is the reading plugin's business: results link to
``/records/<admission_no>``.
"""

from __future__ import annotations

import functools
import html
import json
import re
from typing import Any, Mapping
from urllib.parse import urlencode

import anyio
import msgspec
from litestar import MediaType, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.exceptions import ValidationException
from litestar.params import FromPath
from litestar.plugins.htmx import HTMXTemplate
from litestar.response import Redirect
from markupsafe import Markup
from sqlalchemy import select

from bingan.core import audit
from bingan.core.cjk_text import MARK_END, MARK_START
from bingan.core.exporting import content_disposition
from bingan.core.models import Department
from bingan.core.web.render import in_thread, page
from bingan.core.web.security import actor
from bingan_search import batch as batch_mod
from bingan_search import builder, saved, service
from bingan_search.query import (
    FIELDS, NO_VALUE_OPS, OP_LABELS, QueryError, decode, describe, encode,
)
from bingan_search.results import SORTS
from bingan_search.settings import SearchSettings

PAGING_KEYS = ("page", "sort", "desc", "run")


def _params(request: Request) -> dict[str, list[str]]:
    return {k: list(v) for k, v in request.query_params.dict().items()}


def _one(params: Mapping[str, Any], key: str, default: str = "") -> str:
    v = params.get(key, default)
    if isinstance(v, list):
        v = v[-1] if v else default
    return str(v if v is not None else default).strip()


def _paging(params: Mapping[str, Any]) -> service.Paging:
    raw_page = _one(params, "page", "1") or "1"
    try:
        page_no = int(raw_page)
    except ValueError:
        raise QueryError(f"页码应为数字，收到 {raw_page!r}") from None
    desc = _one(params, "desc")
    return service.Paging(page=page_no, sort=_one(params, "sort") or None,
                          desc=None if desc == "" else desc not in ("0", "false"))


def _fragment(request: Request) -> bool:
    h = request.headers
    return bool(h.get("hx-request")) and not h.get("hx-history-restore-request")


def _base_query(params: Mapping[str, Any]) -> str:
    """The query string of the criteria alone (no paging), percent-encoded."""
    pairs = []
    for k, vs in params.items():
        if k in PAGING_KEYS:
            continue
        for v in (vs if isinstance(vs, list) else [vs]):
            if str(v).strip():
                pairs.append((k, str(v)))
    return urlencode(pairs)


def _departments(rt) -> dict[str, str]:
    with rt.sessions() as s:
        return dict(s.execute(select(Department.code, Department.name)
                              .order_by(Department.code)).all())


def field_choices(rt, spec) -> dict[str, str] | None:
    if spec.choices == "departments":
        return _departments(rt)
    return spec.choices if isinstance(spec.choices, dict) else None


def _common(request: Request, tab: str) -> dict[str, Any]:
    staff = request.state.staff
    return {"tab": tab, "can_export": "search.export" in staff.permissions,
            "sorts": {k: v[0] for k, v in SORTS.items()}}


def _paper_links(request: Request, ctx: dict[str, Any]) -> None:
    """For the hits that are paper only (no page images), where the reader can ask for the
    paper record (``paper_record_request``: the warehouse's borrowing, or the record room):
    ctx["paper"] = {admission_no: RecordLink}."""
    from sqlalchemy import select
    from sqlalchemy.orm import joinedload, selectinload

    from bingan.core.models import Admission
    from bingan.core.records import to_ref

    result = ctx.get("result")
    hits = [getattr(h, "hit", h) for h in getattr(result, "hits", None) or []]  # batch: .hit
    wanted = [h.admission_no for h in hits if not getattr(h, "pages", 1)]
    ctx["paper"] = {}
    hook = getattr(request.app.state.rt.pm.hook, "paper_record_request", None)
    if not wanted or hook is None:
        return
    rt = request.app.state.rt
    with rt.sessions() as s:
        refs = [to_ref(a) for a in s.scalars(
            select(Admission).where(Admission.admission_no.in_(wanted))
            .options(joinedload(Admission.patient), selectinload(Admission.signers)))]
    for ref in refs:
        link = hook(admission=ref, user=request.state.staff, rt=rt)
        if link is not None:
            ctx["paper"][ref.admission_no] = link


def _results(request: Request, template: str, ctx: dict[str, Any], push: str | None) -> Any:
    _paper_links(request, ctx)
    if _fragment(request):
        return HTMXTemplate(template_name=template, context=ctx, media_type=MediaType.HTML,
                            push_url=push or False)
    return None


# ---------------------------------------------------------------------------------------------
# Simple search
# ---------------------------------------------------------------------------------------------

SIMPLE_KEYS = tuple(service.SimpleCriteria.__struct_fields__)
EMPTY_SIMPLE = ("请至少填写一项检索条件：姓名（汉字，或拼音如 zhangsan、zs）、病案号、住院号、"
                "入院或出院日期、诊断编码或诊断名称")
EMPTY_FULLTEXT = "请输入要检索的文字，如 阑尾炎、胸痛三天"


def _department_choices(rt) -> list[tuple[str, str]]:
    """(code, name) of every department, by name (the full-text department filter)."""
    return sorted(_departments(rt).items(), key=lambda kv: kv[1])


def _criteria(params: Mapping[str, Any]) -> service.SimpleCriteria:
    values: dict[str, Any] = {k: _one(params, k) for k in SIMPLE_KEYS if k != "main_only"}
    values["main_only"] = _one(params, "main_only") not in ("", "0", "false")
    return service.SimpleCriteria(**values)


@get("/search", opt={"permission": "search.use"})
async def search_home() -> Redirect:
    return Redirect("/search/simple")


@get("/search/simple", opt={"permission": "search.use"})
@in_thread
def simple_page(request: Request) -> Any:
    rt = request.app.state.rt
    params = _params(request)
    crit = _criteria(params)
    ctx = {**_common(request, "simple"), "crit": crit, "error": None, "result": None,
           "base": "/search/simple?" + _base_query(params), "target": "#results",
           "export_kind": "simple", "export_criteria": msgspec.json.encode(crit).decode(),
           "description": ""}
    status = 200
    if crit.given():
        try:
            paging = _paging(params)
            ctx["description"] = describe(service.simple_query(crit), _departments(rt))
            ctx["result"] = service.simple(rt, crit, paging, actor=actor(request), via="web")
        except QueryError as exc:
            ctx["error"], status = str(exc), 400
    elif _fragment(request) or "name" in params:
        # the form was sent empty: say what to enter instead of showing nothing
        ctx["error"] = EMPTY_SIMPLE
    push = "/search/simple?" + _base_query(params) + _paging_suffix(params)
    frag = _results(request, "search/_results.html", ctx, push if crit.given() else None)
    return frag or page(request, "search/simple.html", status_code=status, **ctx)


def _paging_suffix(params: Mapping[str, Any]) -> str:
    extra = [(k, _one(params, k)) for k in ("page", "sort", "desc") if _one(params, k)]
    return ("&" + urlencode(extra)) if extra else ""


# ---------------------------------------------------------------------------------------------
# Combined search
# ---------------------------------------------------------------------------------------------


def _field_groups() -> list[tuple[str, list[Any]]]:
    groups: dict[str, list[Any]] = {}
    for spec in FIELDS.values():
        groups.setdefault(spec.group, []).append(spec)
    return list(groups.items())


def _builder_ctx(rt) -> dict[str, Any]:
    return {"field_groups": _field_groups(), "fields": FIELDS, "op_labels": OP_LABELS,
            "no_value_ops": NO_VALUE_OPS, "departments": _departments(rt),
            "choices_of": functools.partial(field_choices, rt)}


def _has_builder(params: Mapping[str, Any]) -> bool:
    return bool(_one(params, "q")) or _one(params, "run") == "1"


def _saved_ctx(rt, staff_no: str) -> list[saved.SavedOut]:
    with rt.sessions() as s:
        out = []
        for row in saved.visible(s, staff_no):
            try:
                out.append(saved.to_out(row, staff_no))
            except QueryError:
                continue  # a saved query that no longer validates (field removed) is hidden
        return out


@get("/search/combined", opt={"permission": "search.use"})
@in_thread
def combined_page(request: Request) -> Any:
    rt = request.app.state.rt
    staff = request.state.staff
    params = _params(request)
    ctx: dict[str, Any] = {**_common(request, "combined"), **_builder_ctx(rt), "error": None,
                           "result": None, "target": "#results", "export_kind": "combined",
                           "description": "", "json_text": "", "saved_id": None,
                           "saved_name": ""}
    form = builder.empty_builder()
    status = 200
    saved_raw = _one(params, "saved")
    try:
        if saved_raw:
            with rt.sessions() as s:
                row = saved.get(s, int(saved_raw) if saved_raw.isdigit() else -1, staff.staff_no)
                node = decode(row.query_json)
                ctx["saved_id"], ctx["saved_name"] = row.id, row.name
            form = builder.from_query(node) or form
            if builder.from_query(node) is None:
                ctx["json_text"] = json.dumps(msgspec.to_builtins(node), ensure_ascii=False,
                                              indent=2)
            ctx["export_criteria"] = encode(node)
            if _one(params, "run") == "1":
                ctx["description"] = describe(node, _departments(rt))
                ctx["result"] = service.combined(rt, node, _paging(params), actor=actor(request),
                                                 via="web", saved_id=ctx["saved_id"])
        elif _has_builder(params):
            raw_q = _one(params, "q")
            form = builder.parse_form(params)
            try:
                node = builder.query_from_request(params)
            except QueryError as exc:  # never reached the service: audit the refusal here
                service.record_failure(rt, "search.combined", actor(request), {
                    "via": "web", "criteria": {"q": raw_q[:2000]} if raw_q else
                    {k: v for k, v in params.items() if k.startswith(("g", "mode"))}}, exc)
                raise
            if raw_q:
                ctx["json_text"] = raw_q
                form = builder.from_query(node) or form
            ctx["description"] = describe(node, _departments(rt))
            ctx["export_criteria"] = encode(node)
            ctx["result"] = service.combined(rt, node, _paging(params), actor=actor(request),
                                             via="web")
    except QueryError as exc:
        ctx["error"], status = str(exc), 400
    base_q = _base_query(params)
    ctx["base"] = "/search/combined?" + base_q
    ctx["form"] = form
    ctx["saved_list"] = _saved_ctx(rt, staff.staff_no)
    push = ("/search/combined?" + base_q + _paging_suffix(params)) if _has_builder(params) else None
    frag = _results(request, "search/_results.html", ctx, push)
    return frag or page(request, "search/combined.html", status_code=status, **ctx)


@get("/search/combined/row", opt={"permission": "search.use"})
@in_thread
def combined_row(request: Request) -> Any:
    """One condition row (added, or redrawn after its field or operator changed)."""
    rt = request.app.state.rt
    params = _params(request)
    g = _one(params, "g")
    r = _one(params, "r")
    form = builder.parse_form(params)
    row = builder.Row()
    gi = int(g) if g.isdigit() else 0
    if form.groups and form.groups[0].rows:
        gi, row = form.groups[0].idx, form.groups[0].rows[0]
    elif r.isdigit():
        row.idx = int(r)
    spec = FIELDS.get(row.field)
    if spec is not None and row.op not in spec.ops:
        row.op = spec.ops[0]
    ctx = {**_builder_ctx(rt), "gi": gi, "row": row}
    return HTMXTemplate(template_name="search/_row.html", context=ctx, media_type=MediaType.HTML)


@get("/search/combined/group", opt={"permission": "search.use"})
@in_thread
def combined_group(request: Request) -> Any:
    rt = request.app.state.rt
    g = _one(_params(request), "g")
    grp = builder.GroupForm("and", False, [builder.Row(idx=0)], int(g) if g.isdigit() else 0)
    ctx = {**_builder_ctx(rt), "group": grp}
    return HTMXTemplate(template_name="search/_group.html", context=ctx, media_type=MediaType.HTML)


async def _form(request: Request) -> dict[str, list[Any]]:
    form = await request.form()
    return {k: list(form.getall(k)) for k in form.keys()}


def _saved_fragment(request: Request, message: str = "", error: str = "") -> Any:
    rt = request.app.state.rt
    ctx = {"saved_list": _saved_ctx(rt, request.state.staff.staff_no), "saved_message": message,
           "saved_error": error}
    return HTMXTemplate(template_name="search/_saved.html", context=ctx, media_type=MediaType.HTML)


@post("/search/saved", opt={"permission": "search.use"}, status_code=200)
async def save_query(request: Request) -> Any:
    """Save the builder's query under a name (htmx answers the saved list)."""
    form = await _form(request)
    return await anyio.to_thread.run_sync(functools.partial(_save_query, request, form))


def _save_query(request: Request, form: dict[str, list[Any]]) -> Any:
    rt = request.app.state.rt
    staff = request.state.staff
    name = _one(form, "save_name")
    shared = _one(form, "save_shared") not in ("", "0", "false")
    try:
        node = builder.query_from_request(form)
        with rt.sessions() as s, s.begin():
            row = saved.save(s, staff.staff_no, name, node, shared)
            audit.record(s, rt, "search.saved.save", actor=actor(request), detail={
                "id": row.id, "name": row.name, "shared": shared, "query": encode(node)})
            saved_id = row.id
    except QueryError as exc:
        if _fragment(request):
            return _saved_fragment(request, error=str(exc))
        raise ValidationException(str(exc)) from exc
    if _fragment(request):
        return _saved_fragment(request, message=f"已保存“{name}”")
    return Redirect(f"/search/combined?saved={saved_id}")


@post("/search/saved/{query_id:int}/delete", opt={"permission": "search.use"}, status_code=200)
@in_thread
def delete_query(request: Request, query_id: FromPath[int]) -> Any:
    rt = request.app.state.rt
    try:
        with rt.sessions() as s, s.begin():
            row = saved.delete(s, query_id, request.state.staff.staff_no)
            audit.record(s, rt, "search.saved.delete", actor=actor(request),
                         detail={"id": query_id, "name": row.name})
    except QueryError as exc:
        if _fragment(request):
            return _saved_fragment(request, error=str(exc))
        raise ValidationException(str(exc)) from exc
    if _fragment(request):
        return _saved_fragment(request, message="已删除")
    return Redirect("/search/combined")


# ---------------------------------------------------------------------------------------------
# Batch search
# ---------------------------------------------------------------------------------------------


@get("/search/batch", opt={"permission": "search.use"})
@in_thread
def batch_page(request: Request) -> Any:
    ctx = {**_common(request, "batch"), "kinds": batch_mod.KIND_LABELS, "kind": "auto",
           "text": "", "error": None, "result": None,
           "max_numbers": request.app.state.rt.settings(SearchSettings).batch_max_numbers}
    return page(request, "search/batch.html", **ctx)


@post("/search/batch", opt={"permission": "search.use"}, status_code=200)
async def batch_submit(request: Request) -> Any:
    form = await request.form()
    upload = form.get("file")
    file_name, file_data = "", b""
    if isinstance(upload, UploadFile) and upload.filename:
        file_name, file_data = upload.filename, await upload.read()
    fields = {k: [v for v in form.getall(k) if not isinstance(v, UploadFile)] for k in form.keys()}
    return await anyio.to_thread.run_sync(
        functools.partial(_batch_work, request, fields, file_name, file_data))


def _batch_input(rt, fields: Mapping[str, Any], file_name: str,
                 file_data: bytes) -> tuple[batch_mod.BatchInput, str]:
    state = _one(fields, "numbers")
    if state:  # page turn / sort: the numbers of the first submit travel with the form
        return batch_mod.BatchInput(batch_mod.split_text(state)), "state"
    pasted = batch_mod.split_text(_one(fields, "text"))
    if not (file_data or file_name):
        return batch_mod.BatchInput(pasted), "paste"
    got = batch_mod.read_upload(file_name, file_data,
                                rt.settings(SearchSettings).batch_max_upload_bytes,
                                rt.settings(SearchSettings).batch_max_numbers)
    source = ("paste+file:" if pasted else "file:") + file_name
    return batch_mod.BatchInput(pasted + got.numbers, got.warnings), source


def _batch_work(request: Request, fields: dict[str, list[Any]], file_name: str,
                file_data: bytes) -> Any:
    rt = request.app.state.rt
    st = rt.settings(SearchSettings)
    kind = _one(fields, "kind") or "auto"
    ctx: dict[str, Any] = {**_common(request, "batch"), "kinds": batch_mod.KIND_LABELS,
                           "kind": kind, "text": _one(fields, "text"), "error": None,
                           "result": None, "max_numbers": st.batch_max_numbers}
    status = 200
    try:
        paging = _paging(fields)
        paging.desc = bool(paging.desc)
        inp, source = _batch_input(rt, fields, file_name, file_data)
    except (batch_mod.BatchError, QueryError) as exc:
        service.record_failure(rt, "search.batch", actor(request), {
            "via": "web", "kind": kind, "source": f"file:{file_name}" if file_name else "paste"},
            exc)
        ctx["error"], status = str(exc), 400
    else:
        try:
            ctx["result"] = service.batch(rt, inp, kind, paging, actor=actor(request),
                                          via="web", source=source)
            ctx["numbers_state"] = "\n".join(batch_mod.clean(inp, st.batch_max_numbers).numbers)
        except (batch_mod.BatchError, QueryError) as exc:
            ctx["error"], status = str(exc), 400
    _paper_links(request, ctx)
    if _fragment(request):
        return HTMXTemplate(template_name="search/_batch_results.html", context=ctx,
                            media_type=MediaType.HTML)
    return page(request, "search/batch.html", status_code=status, **ctx)


# ---------------------------------------------------------------------------------------------
# Full text
# ---------------------------------------------------------------------------------------------


def highlight(snippet: str, query: str) -> Markup:
    """The snippet as plain text with the matched phrase in <mark>. Backends mark their
    matches with « » (core.cjk_text): those marks become <mark> and never show themselves;
    a snippet without them gets every occurrence of the query (and of its words) marked."""
    snippet = snippet or ""
    if MARK_START in snippet:
        out, rest = [], snippet
        while MARK_START in rest:
            before, _, after = rest.partition(MARK_START)
            inside, found, rest = after.partition(MARK_END)
            out.append(html.escape(before))
            out.append(f"<mark>{html.escape(inside)}</mark>" if found else html.escape(inside))
        out.append(html.escape(rest.replace(MARK_END, "")))
        return Markup("".join(out))
    text = html.escape(snippet)
    words = sorted({w for w in [query.strip(), *query.split()] if w}, key=len, reverse=True)
    if not words:
        return Markup(text)
    pattern = re.compile("|".join(re.escape(html.escape(w)) for w in words))
    return Markup(pattern.sub(lambda m: f"<mark>{m.group(0)}</mark>", text))


FT_FILTERS = ("discharged_from", "discharged_to", "department")


@get("/search/fulltext", opt={"permission": "search.use"})
@in_thread
def fulltext_page(request: Request) -> Any:
    rt = request.app.state.rt
    params = _params(request)
    q = _one(params, "q")
    filters = {k: _one(params, k) for k in FT_FILTERS}
    ctx: dict[str, Any] = {**_common(request, "fulltext"), "q": q, "error": None,
                           "result": None, "highlight": highlight, "f": filters,
                           "departments": _department_choices(rt)}
    status = 200
    if q:
        try:
            page_no = _paging(params).page
            ctx["result"] = service.fulltext_records(
                rt, q, page_no, user=request.state.staff, actor=actor(request), via="web",
                **filters)
        except QueryError as exc:
            ctx["error"], status = str(exc), 400
    elif _fragment(request) or "q" in params:
        ctx["error"] = EMPTY_FULLTEXT
    ctx["base"] = "/search/fulltext?" + urlencode(
        [("q", q)] + [(k, v) for k, v in filters.items() if v])
    push = ctx["base"] + "&page=" + (_one(params, "page") or "1")
    frag = _results(request, "search/_fulltext_hits.html", ctx, push if q else None)
    return frag or page(request, "search/fulltext.html", status_code=status, **ctx)


# ---------------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------------


@post("/search/export", opt={"permission": "search.export"}, status_code=200)
async def export(request: Request) -> Response:
    """The whole result of a search as xlsx or csv (audited ``search.export``)."""
    form = await _form(request)
    return await anyio.to_thread.run_sync(functools.partial(_export, request, form))


def _export(request: Request, form: dict[str, list[Any]]) -> Response:
    rt = request.app.state.rt
    kind = _one(form, "kind")
    fmt = _one(form, "format") or "xlsx"
    raw = _one(form, "criteria")
    desc_raw = _one(form, "desc")
    desc = None if desc_raw == "" else desc_raw not in ("0", "false")
    sort = _one(form, "sort") or None
    who = actor(request)
    try:  # reading the request: a failure here is audited here
        if kind == "simple":
            crit = msgspec.json.decode(raw or "{}", type=service.SimpleCriteria)
            if not crit.given():
                raise QueryError("没有检索条件")
        elif kind == "combined":
            node = decode(raw)
        elif kind == "batch":
            numbers = batch_mod.split_text(_one(form, "numbers"))
        else:
            raise QueryError("未知的导出类型")
    except (msgspec.ValidationError, msgspec.DecodeError, QueryError) as exc:
        service.record_failure(rt, "search.export", who, {"via": "web", "kind": kind,
                                                          "criteria": raw[:2000]}, exc)
        raise ValidationException(f"检索条件有误：{exc}") from exc
    try:  # the service audits success and failure itself
        if kind == "simple":
            out = service.export_structured(rt, "simple", service.simple_query(crit), sort,
                                            desc, fmt, actor=who, via="web",
                                            criteria=crit.given())
        elif kind == "combined":
            out = service.export_structured(rt, "combined", node, sort, desc, fmt, actor=who,
                                            via="web", criteria={"query": raw})
        else:
            out = service.export_batch(rt, batch_mod.BatchInput(numbers),
                                       _one(form, "number_kind") or "auto", sort, bool(desc),
                                       fmt, actor=who, via="web")
    except (QueryError, batch_mod.BatchError) as exc:
        raise ValidationException(str(exc)) from exc
    return Response(out.body, media_type=out.media_type,
                    headers={"Content-Disposition": content_disposition(out.filename),
                             "X-Export-Rows": str(out.rows),
                             "X-Export-Truncated": "1" if out.truncated else "0"})


ROUTES = [search_home, simple_page, combined_page, combined_row, combined_group, save_query,
          delete_query, batch_page, batch_submit, fulltext_page, export]

__all__ = ["ROUTES", "highlight"]

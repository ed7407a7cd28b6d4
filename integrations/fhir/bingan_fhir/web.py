"""The FHIR R4 routes (IHE MHD Document Responder), for API clients with ``documents.read``.

  GET /fhir/metadata                       CapabilityStatement (public, as FHIR expects)
  GET /fhir/Patient?identifier=            GET /fhir/Patient/{id}
  GET /fhir/Encounter?patient.identifier=  GET /fhir/Encounter/{id}
  GET /fhir/DocumentReference?patient.identifier=...   (ITI-67)
  GET /fhir/DocumentReference/{id}
  GET /fhir/Binary/{id}                    the PDF or the C0032 CDA (ITI-68)

Each admission returned passed the viewer's access decision; every call is audited by core
under the client (``api.call``), each search names its records (``fhir.search``), each
document retrieved is audited with its MRN (``fhir.retrieve``).
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response, get
from litestar.params import FromPath

from bingan.core import __version__, audit
from bingan.core.exporting import content_disposition
from bingan.core.models import Document
from bingan.core.staff import department_names
from bingan.core.web.render import in_thread
from bingan.core.web.security import actor, api_route

from bingan_fhir import resources as R
from bingan_fhir import service
from bingan_fhir.search import SearchError, paging, valid_id
from bingan.core.config import CoreSettings

SCOPE = "documents.read"


def fhir(body: dict[str, Any], status: int = 200) -> Response:
    return Response(body, status_code=status, media_type=R.FHIR_JSON)


def outcome(status: int, code: str, text: str) -> Response:
    return fhir(R.operation_outcome(code, text), status)


def _base(request: Request) -> str:
    return service.base_url(request.app.state.rt, str(request.base_url))


def _page(request: Request, resource: str, found: service.Found) -> Response:
    rt = request.app.state.rt
    st = service.settings(rt)
    count, offset = paging(request.query_params, st)
    items = found.resources[offset:offset + count]
    base = _base(request)
    query = [(k, v) for k in request.query_params.keys() if k not in ("_offset",)
             for v in request.query_params.getall(k)]
    self_url = f"{base}/fhir/{resource}?" + urlencode(query + [("_offset", offset)])
    nxt = None
    if offset + count < len(found.resources) and count:
        nxt = f"{base}/fhir/{resource}?" + urlencode(query + [("_offset", offset + count)])
    return fhir(R.bundle(base, items, len(found.resources), self_url, nxt))


def _search(request: Request, resource: str, run) -> Response:
    rt = request.app.state.rt
    try:
        with rt.sessions() as s, s.begin():
            found = run(s, rt, request.state.staff, request.query_params)
            paging(request.query_params, service.settings(rt))
            service.audit_search(s, rt, actor(request), resource, request.query_params, found)
    except SearchError as exc:
        return outcome(400, "invalid", str(exc))
    return _page(request, resource, found)


@get("/fhir/metadata", opt={"public": True}, include_in_schema=True)
async def metadata(request: Request) -> Response:
    """The CapabilityStatement: what this FHIR server offers (IHE MHD Document Responder)."""
    rt = request.app.state.rt
    return fhir(R.capability_statement(_base(request), __version__, rt.settings(CoreSettings).hospital_name))


@get("/fhir/DocumentReference", opt=api_route(SCOPE))
@in_thread
def find_documents(request: Request) -> Response:
    """ITI-67 Find Document References: ``patient`` or ``patient.identifier``
    (``urn:oid:2.16.156.10011.1.13|<病案号>``), and ``status``, ``date``, ``type``,
    ``encounter``, ``_count``, ``_offset``."""
    base = _base(request)
    return _search(request, "DocumentReference",
                   lambda s, rt, u, p: service.search_documents(s, rt, u, p, base))


@get("/fhir/Encounter", opt=api_route(SCOPE))
@in_thread
def find_encounters(request: Request) -> Response:
    """Stays of a patient (``patient``, ``patient.identifier``) or by 住院号 (``identifier``)."""
    return _search(request, "Encounter", service.search_encounters)


@get("/fhir/Patient", opt=api_route(SCOPE))
@in_thread
def find_patients(request: Request) -> Response:
    """Patients by ``identifier`` (病案号 or 身份证号 with their OIDs) or ``_id``."""
    return _search(request, "Patient", service.search_patients)


def _read(request: Request, resource: str, rid: str, run) -> Response:
    rt = request.app.state.rt
    try:
        valid_id(rid)
        with rt.sessions() as s, s.begin():
            found = run(s, rt, request.state.staff, _IdParams(rid))
            service.audit_search(s, rt, actor(request), resource, _IdParams(rid), found)
    except SearchError as exc:
        return outcome(400, "invalid", str(exc))
    if not found.resources:
        # unknown and not readable answer alike: no probing for which records exist
        return outcome(404, "not-found", f"{resource}/{rid} 不存在或无权读取")
    return fhir(found.resources[0])


class _IdParams(dict):
    """Query parameters of a read by id (``_id=<id>``), shaped like Litestar's."""

    def __init__(self, rid: str) -> None:
        super().__init__({"_id": rid})

    def getall(self, key: str) -> list[str]:
        return [self[key]]


@get("/fhir/DocumentReference/{rid:str}", opt=api_route(SCOPE))
@in_thread
def read_document(request: Request, rid: FromPath[str]) -> Response:
    base = _base(request)
    return _read(request, "DocumentReference", rid,
                 lambda s, rt, u, p: service.search_documents(s, rt, u, p, base))


@get("/fhir/Encounter/{rid:str}", opt=api_route(SCOPE))
@in_thread
def read_encounter(request: Request, rid: FromPath[str]) -> Response:
    return _read(request, "Encounter", rid, service.search_encounters)


@get("/fhir/Patient/{rid:str}", opt=api_route(SCOPE))
@in_thread
def read_patient(request: Request, rid: FromPath[str]) -> Response:
    return _read(request, "Patient", rid, service.search_patients)


@get("/fhir/Binary/{rid:str}", opt=api_route(SCOPE))
@in_thread
def retrieve(request: Request, rid: FromPath[str]) -> Response:
    """ITI-68 Retrieve Document: the PDF (``pdf-<n>``) or the front page as C0032 CDA
    (``fp-<n>``), after the viewer's access decision, audited with the record's MRN. Raw bytes,
    or a Binary resource when ``Accept: application/fhir+json``."""
    rt = request.app.state.rt
    kind, _, num = rid.partition("-")
    if kind not in ("pdf", "fp") or not num.isdigit() or len(num) > 12:
        return outcome(404, "not-found", f"Binary/{rid[:70]} 不存在")
    who = actor(request)
    with rt.sessions() as s, s.begin():
        doc = s.get(Document, int(num)) if kind == "pdf" else None
        adm_id = doc.admission_id if doc is not None else (int(num) if kind == "fp" else None)
        adm = service.load_admission(s, adm_id) if adm_id is not None else None
        if adm is None or (kind == "fp" and not service.front_page_ready(adm)):
            audit.record(s, rt, "fhir.retrieve", actor=who, outcome="failed",
                         detail={"binary": rid[:40], "why": "unknown"})
            s.commit()
            return outcome(404, "not-found", f"Binary/{rid} 不存在或无权读取")
        d = service.may_view(s, rt, request.state.staff, adm)
        detail: dict[str, Any] = {"binary": rid, "reason": d.reason,
                                  "votes": [f"{p}:{v.rule}:{'allow' if v.allow else 'deny'}"
                                            for p, v in d.votes]}
        if doc is not None:
            detail.update(version=doc.version, sha256=doc.blob_sha256, size=doc.size)
        audit.record(s, rt, "fhir.retrieve", actor=who, outcome="ok" if d.allowed else "denied",
                     mrn=adm.patient.mrn, admission_no=adm.admission_no, detail=detail)
        if not d.allowed:
            s.commit()
            return outcome(404, "not-found", f"Binary/{rid} 不存在或无权读取")
        if doc is not None:
            sha, media = doc.blob_sha256, "application/pdf"
            data = None
        else:
            from bingan_fhir.cda import front_page_xml

            data = front_page_xml(s, rt, adm, department_names(s))
            media = R.CDA_MEDIA_TYPE
    if data is None:
        data = rt.store.get(sha)
    if R.FHIR_JSON in request.headers.get("accept", ""):
        return fhir({"resourceType": "Binary", "id": rid, "contentType": media,
                     "data": base64.b64encode(data).decode()})
    return Response(data, media_type=media, headers={"Cache-Control": "no-store"})


@get("/interop/c0032/{admission_no:str}", include_in_schema=True)
@in_thread
def export_front_page(request: Request, admission_no: FromPath[str]) -> Response:
    """The front page of one admission as a WS/T 500 C0032 CDA document (download), for staff
    who may ``export`` the record (the viewer's access decision, audited)."""
    from litestar.exceptions import NotFoundException, PermissionDeniedException

    from bingan.core import permissions
    from bingan_fhir.cda import admission_by_no, front_page_xml

    rt = request.app.state.rt
    who = actor(request)
    with rt.sessions() as s, s.begin():
        adm = admission_by_no(s, admission_no)
        if adm is None or not service.front_page_ready(adm):
            raise NotFoundException(f"住院号 {admission_no[:32]} 不存在或尚未出院")
        d = permissions.decide(s, rt, request.state.staff, adm, "export", actor=who)
        if not d.allowed:
            s.commit()
            raise PermissionDeniedException(d.reason)
        data = front_page_xml(s, rt, adm, department_names(s))
        audit.record(s, rt, "cda.export", actor=who, mrn=adm.patient.mrn,
                     admission_no=adm.admission_no, detail={"document": "C0032",
                                                            "size": len(data)})
    return Response(data, media_type="application/xml; charset=utf-8", headers={
        "Content-Disposition": content_disposition(f"{adm.admission_no}_C0032.xml")})


ROUTES = [export_front_page, metadata, find_documents, find_encounters, find_patients, read_document,
          read_encounter, read_patient, retrieve]

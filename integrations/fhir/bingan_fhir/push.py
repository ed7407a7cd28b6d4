"""The ``record_digitized`` push: a DocumentReference to the CDR, through the durable queue.

When a record becomes digitized (first time, or a new PDF version), a ``fhir.push`` task is
queued; its handler POSTs the DocumentReference to ``<push_url>/DocumentReference`` as a FHIR
conditional create (``If-None-Exist`` on the document's unique id), so a retried or repeated
push never files the document twice at a server that honours it. A refused or unreachable
server raises, and the queue retries with back-off up to ``push_max_attempts``; each attempt's
outcome is audited (``fhir.push``).
"""

from __future__ import annotations

from typing import Any

import httpx

from bingan.core import audit, tasks
from bingan.core.models import Document
from sqlalchemy import select

from bingan_fhir import resources as R
from bingan_fhir import service
from bingan.core.config import CoreSettings
from bingan.hooks.types import Runtime

KIND = "fhir.push"
ACTOR = audit.Actor(staff_no="fhir:push")


class PushFailed(RuntimeError):
    """The CDR did not take the DocumentReference (the task is retried)."""


def queue(rt, admission_id: int, version: int) -> None:
    """Queue the push of one PDF version (in its own transaction: called after commit)."""
    st = service.settings(rt)
    if not st.push_url:
        return
    with rt.sessions() as s, s.begin():
        tasks.enqueue(s, rt, KIND, {"admission_id": admission_id, "version": version},
                      dedupe_key=f"{KIND}:{admission_id}:{version}",
                      max_attempts=st.push_max_attempts)


def document_reference(rt, admission_id: int, version: int) -> tuple[dict[str, Any], Any]:
    st = service.settings(rt)
    with rt.sessions() as s:
        adm = service.load_admission(s, admission_id)
        docs = list(s.scalars(select(Document).where(Document.admission_id == admission_id)
                              .order_by(Document.version)))
        doc = next((d for d in docs if d.version == version), None)
        if adm is None or doc is None:
            raise LookupError(f"admission {admission_id} has no document version {version}")
        prev = next((d.id for d in reversed(docs) if d.version < version), None)
        res = R.pdf_reference(st, st.base_url, rt.settings(CoreSettings), adm, doc,
                              docs[-1].version, prev)
        return res, (adm.patient.mrn, adm.admission_no)


def handle(payload: dict[str, Any], rt: Runtime) -> dict[str, Any]:
    st = service.settings(rt)
    if not st.push_url:
        return {"skipped": "push_url not set"}
    res, (mrn, admission_no) = document_reference(rt, payload["admission_id"],
                                                  payload["version"])
    res = {k: v for k, v in res.items() if k != "id"}  # the server assigns its own id
    headers = {"Content-Type": R.FHIR_JSON, "Accept": R.FHIR_JSON,
               "If-None-Exist": "identifier=urn:ietf:rfc:3986|"
                                + res["masterIdentifier"]["value"]}
    if st.push_token:
        headers["Authorization"] = f"Bearer {st.push_token}"
    url = f"{st.push_url}/DocumentReference"
    error, status = None, None
    try:
        r = httpx.post(url, json=res, headers=headers, timeout=st.push_timeout_seconds)
        status = r.status_code
        if r.status_code not in (200, 201):
            error = f"HTTP {r.status_code}: {r.text[:300]}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"
    with rt.sessions() as s, s.begin():
        audit.record(s, rt, KIND, actor=ACTOR, outcome="ok" if error is None else "failed",
                     mrn=mrn, admission_no=admission_no,
                     detail={"url": url, "version": payload["version"], "status": status,
                             **({"error": error} if error else {})})
    if error is not None:
        raise PushFailed(error)
    return {"status": status, "location": r.headers.get("location")}

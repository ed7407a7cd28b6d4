"""The launch and embed routes.

  GET /emr/launch?system=&user=&admission=&ts=&nonce=&sig=   sign the mapped staff member in,
                                                             open the record in the viewer
  GET /emr/embed?<the same link>                             the same check; a page the 360
                                                             view may frame (``embed_origins``)

Both are public (the link is the credential) and audited (``emr.launch``), refused or not.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import quote

from litestar import Request, Response, get
from litestar.response import Redirect
from sqlalchemy import select

from bingan.core import audit, permissions
from bingan.core.models import Admission, WebSession
from bingan.core.pages import current_pages
from bingan.core.records import DISCHARGE_WAYS
from bingan.core.staff import department_names, staff_ref
from bingan.core.web.headers import CSP
from bingan.core.web.render import in_thread, page
from bingan.core.web.security import (
    COOKIE, CSRF_COOKIE, actor, cookie_secure, new_token, session_csrf_token, token_hash,
)

from bingan_emr_launch.links import LaunchRefused, verify
from bingan_emr_launch.settings import EmrLaunchSettings
from bingan.core.config import CoreSettings


def settings(rt):
    return rt.settings(EmrLaunchSettings)


def record_url(admission_no: str) -> str:
    """The record's page (core's canonical record URL, served by the viewer)."""
    return "/records/" + quote(admission_no, safe="")


def _who(request: Request, staff_no: str | None) -> audit.Actor:
    a = actor(request)
    return audit.Actor(staff_no=staff_no, client_ip=a.client_ip, computer_name=a.computer_name)


def _open(request: Request, mode: str) -> tuple[str, str, Any] | Response:
    """Check the link and sign its staff member in: (admission number, session token, embed
    page data), or the refusal page."""
    rt = request.app.state.rt
    st = settings(rt)
    params = {k: request.query_params.get(k) or "" for k in request.query_params.keys()}
    try:
        with rt.sessions() as s, s.begin():
            launch = verify(s, st, params, totp_roles=rt.settings(CoreSettings).totp_required_roles)
            token = new_token()
            s.add(WebSession(token_hash=token_hash(token), staff_id=launch.staff.id,
                             mfa_passed=True, mfa_required=False,
                             client_ip=request.state.client_ip,
                             user_agent=("emr:" + launch.system + " "
                                         + request.headers.get("user-agent", ""))[:256]))
            adm = launch.admission
            audit.record(s, rt, "emr.launch", actor=_who(request, launch.staff.staff_no),
                         mrn=adm.patient.mrn, admission_no=adm.admission_no,
                         detail={"system": launch.system, "emr_user": launch.user,
                                 "mode": mode})
            data = _embed_data(s, rt, request, launch) if mode == "embed" else None
            return adm.admission_no, token, data
    except LaunchRefused as refused:  # nothing of the attempt stays but its audit event
        exc = refused
    with rt.sessions() as s, s.begin():
        staff_no = exc.detail.get("staff_no")
        audit.record(s, rt, "emr.launch", actor=_who(request, staff_no), outcome="denied",
                     admission_no=str(params.get("admission") or "")[:32] or None,
                     detail={"why": exc.why, "system": str(params.get("system") or "")[:32],
                             "emr_user": str(params.get("user") or "")[:64], "mode": mode,
                             **exc.detail})
    return page(request, "error.html", status_code=403, title="无法打开病案",
                message=str(exc))


def _cookies(request: Request, response: Response, token: str, embed: bool) -> Response:
    rt = request.app.state.rt
    secure = cookie_secure(rt, request)
    # framed by the 360 view (another site): the cookie must travel in a third-party frame,
    # which browsers allow only for SameSite=None over https
    samesite: Literal["none", "lax"] = "none" if embed and secure else "lax"
    response.set_cookie(COOKIE, token, httponly=True, samesite=samesite, path="/", secure=secure)
    response.set_cookie(CSRF_COOKIE, session_csrf_token(rt, token), httponly=True,
                        samesite=samesite, path="/", secure=secure)
    return response


@get("/emr/launch", opt={"public": True}, include_in_schema=False)
@in_thread
def launch(request: Request) -> Any:
    """Open one admission in the viewer for the EMR's signed-in user (signed link)."""
    got = _open(request, "launch")
    if not isinstance(got, tuple):
        return got
    admission_no, token, _ = got
    return _cookies(request, Redirect(record_url(admission_no)), token, False)


def _embed_data(s, rt, request: Request, lnk) -> dict[str, Any]:
    """What the embed shows, after the viewer's access decision for the staff member."""
    adm = s.scalar(select(Admission).where(Admission.id == lnk.admission.id))
    user = staff_ref(lnk.staff)
    d = permissions.decide(s, rt, user, adm, "view", actor=_who(request, user.staff_no))
    out: dict[str, Any] = {"allowed": d.allowed, "reason": d.reason, "staff": user,
                           "admission_no": adm.admission_no, "url": record_url(adm.admission_no)}
    if d.allowed:
        names = department_names(s)
        out.update(
            name=adm.patient.name, mrn=adm.patient.mrn, visit_no=adm.visit_no,
            admitted_at=adm.admitted_at, discharged_at=adm.discharged_at,
            department=names.get(adm.discharge_department or "", adm.discharge_department),
            discharge_way=DISCHARGE_WAYS.get(adm.discharge_way or "", ""),
            diagnoses=[(dx.code, dx.name) for dx in adm.diagnoses],
            pages=[p.id for p in current_pages(s, adm.id)])
    return out


@get("/emr/embed", opt={"public": True}, include_in_schema=False)
@in_thread
def embed(request: Request) -> Any:
    """The same link, as a page the 360 patient view frames: the record's summary and its
    watermarked pages, under the staff member's reading rights."""
    got = _open(request, "embed")
    if not isinstance(got, tuple):
        return got
    _no, token, data = got
    origins = " ".join(settings(request.app.state.rt).embed_origins)
    csp = CSP.replace("frame-ancestors 'none'", f"frame-ancestors 'self' {origins}".strip())
    resp = page(request, "emr_launch/embed.html", status_code=200 if data["allowed"] else 403,
                **data)
    resp.headers.update({"Content-Security-Policy": csp, "X-Frame-Options": "SAMEORIGIN"})
    return _cookies(request, resp, token, True)


ROUTES = [launch, embed]

"""Audit pages for auditors: filter events (user, MRN, action, time) and export to Excel.
Looking at and exporting the log are themselves audited."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlencode
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar.params import FromQuery
from litestar import MediaType, Request, Response, get
from litestar.exceptions import ValidationException
from litestar.plugins.htmx import HTMXTemplate
from sqlalchemy import func, select

from bingan.hooks import hookimpl
from bingan.hooks.types import NavItem
from bingan.core import audit, identifiers
from bingan.core.exporting import content_disposition, to_csv, to_xlsx
from bingan.core.models import AuditEvent, Patient
from bingan.core.web.render import in_thread, page
from bingan.core.web.security import actor

PAGE_SIZE = 50
HEADERS = ["序号", "时间", "工号", "操作", "操作说明", "结果", "结果说明", "病案号", "住院号",
           "客户端IP", "计算机名", "详情"]


FILTER_KEYS = ("staff_no", "mrn", "admission_no", "patient", "action", "outcome", "start", "end")


@dataclass
class AuditFilter:
    """The auditor's filter. Numbers are taken as typed (``d0001``, an MRN without its
    leading zeros); the action as its Chinese label (any part of it: 查阅) or its code prefix
    (``access.``); the patient by name (every MRN registered under that name)."""

    staff_no: str = ""
    mrn: str = ""
    admission_no: str = ""
    patient: str = ""
    action: str = ""
    outcome: str = ""
    start: str = ""
    end: str = ""
    labels: dict[str, str] | None = None
    tz: dt.tzinfo = dt.timezone.utc  # how typed times without an offset are read

    @classmethod
    def from_query(cls, q, labels: dict[str, str] | None = None,
                   tz: dt.tzinfo = dt.timezone.utc) -> "AuditFilter":
        values = {k: str(q.get(k, "") or "").strip()[:64] for k in FILTER_KEYS}
        return cls(**values, labels=labels, tz=tz)

    def _time(self, value: str, end: bool) -> dt.datetime | None:
        if not value:
            return None
        try:
            t = dt.datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValidationException(f"时间格式错误：{value}（应为 2026-01-31）") from exc
        if len(value) <= 10 and end:
            t = t + dt.timedelta(days=1)
        return (t if t.tzinfo else t.replace(tzinfo=self.tz)).astimezone(dt.timezone.utc)

    def action_codes(self) -> list[str] | None:
        """Codes whose Chinese label contains the typed text (None: the text is a code)."""
        if not self.action or not re.search(r"[\u3400-\u9fff]", self.action):
            return None
        labels = self.labels if self.labels is not None else audit.action_labels()
        return sorted(code for code, label in labels.items() if self.action in label)

    def query(self):
        q = select(AuditEvent)
        if self.staff_no:
            q = q.where(AuditEvent.staff_no.in_({self.staff_no, identifiers.staff_no(
                self.staff_no)}))
        if self.mrn:
            q = q.where(AuditEvent.mrn.in_(identifiers.mrn_candidates(self.mrn) or [""]))
        if self.admission_no:
            q = q.where(AuditEvent.admission_no.in_({self.admission_no, identifiers.admission_no(
                self.admission_no)}))
        if self.patient:
            q = q.where(AuditEvent.mrn.in_(select(Patient.mrn).where(
                Patient.name == self.patient)))
        if self.action:
            codes = self.action_codes()
            if codes is None:
                q = q.where(AuditEvent.action.startswith(self.action, autoescape=True))
            else:
                q = q.where(AuditEvent.action.in_(codes or [""]))
        if self.outcome:
            if self.outcome not in audit.OUTCOME_LABELS:
                raise ValidationException(f"未知的结果：{self.outcome}")
            same = audit.OUTCOME_LABELS[self.outcome]  # 拒绝 is both deny and denied
            q = q.where(AuditEvent.outcome.in_(
                sorted(k for k, v in audit.OUTCOME_LABELS.items() if v == same)))
        start, end = self._time(self.start, False), self._time(self.end, True)
        if start and end and end <= start:
            raise ValidationException("结束日期早于开始日期")
        if start:
            q = q.where(AuditEvent.ts >= start)
        if end:
            q = q.where(AuditEvent.ts < end)
        return q

    def as_dict(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in FILTER_KEYS if getattr(self, k)}


def _row(e: AuditEvent, labels: dict[str, str]) -> list[Any]:
    return [e.seq, e.ts, e.staff_no, e.action, labels.get(e.action, ""), e.outcome,
            audit.outcome_label(e.outcome), e.mrn, e.admission_no, e.client_ip,
            e.computer_name, e.detail]


@get("/audit", opt={"permission": "audit.read"})
@in_thread
def audit_list(request: Request, page_no: FromQuery[int] = 1) -> Any:
    rt = request.app.state.rt
    f = AuditFilter.from_query(request.query_params, audit.action_labels(rt), rt.tz)
    page_no = max(1, page_no)
    with rt.sessions() as s, s.begin():
        q = f.query()
        total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
        rows = s.scalars(q.order_by(AuditEvent.seq.desc()).offset((page_no - 1) * PAGE_SIZE)
                         .limit(PAGE_SIZE)).all()
        audit.record(s, rt, "audit.search", actor=actor(request), mrn=f.mrn or None,
                     detail={"filter": f.as_dict(), "page": page_no, "total": total})
    ctx = {"rows": rows, "total": total, "page_no": page_no, "f": f,
           "action_choices": sorted(set((f.labels or {}).values())),
           "outcomes": {k: v for k, v in audit.OUTCOME_LABELS.items() if k != "deny"},
           "pages": max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE),
           "query": urlencode(f.as_dict())}
    if request.headers.get("hx-request"):
        return HTMXTemplate(template_name="audit/_table.html", context=ctx,
                            media_type=MediaType.HTML,
                            push_url="/audit" + (f"?{ctx['query']}" if ctx["query"] else ""))
    return page(request, "audit/list.html", **ctx)


@get("/audit/export", opt={"permission": "audit.export"})
@in_thread
def audit_export(request: Request, format: FromQuery[str] = "xlsx") -> Response:
    rt = request.app.state.rt
    if format not in ("xlsx", "csv"):
        raise ValidationException("format 只能是 xlsx 或 csv")
    labels = audit.action_labels(rt)
    f = AuditFilter.from_query(request.query_params, labels, rt.tz)
    with rt.sessions() as s, s.begin():
        rows = [_row(e, labels) for e in s.scalars(f.query().order_by(AuditEvent.seq).limit(1_000_000))]
        audit.record(s, rt, "audit.export", actor=actor(request), mrn=f.mrn or None,
                     detail={"filter": f.as_dict(), "rows": len(rows), "format": format})
    name = f"审计日志_{dt.datetime.now(rt.tz):%Y%m%d%H%M}.{format}"
    if format == "xlsx":
        body = to_xlsx("审计日志", HEADERS, rows, tz=rt.tz)
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    else:
        body, media = to_csv(HEADERS, rows, tz=rt.tz), "text/csv"
    return Response(body, media_type=media,
                    headers={"Content-Disposition": content_disposition(name)})


class AuditEventOut(msgspec.Struct):
    seq: int
    ts: dt.datetime
    staff_no: str | None
    action: str
    outcome: str
    mrn: str | None
    admission_no: str | None
    client_ip: str | None
    computer_name: str | None
    detail: str


@get("/api/audit", opt={"permission": "audit.read"})
@in_thread
def api_audit(request: Request, limit: FromQuery[int] = 100) -> list[AuditEventOut]:
    rt = request.app.state.rt
    if not 1 <= limit <= 1000:
        raise ValidationException("limit 须在 1 到 1000 之间")
    f = AuditFilter.from_query(request.query_params, audit.action_labels(rt), rt.tz)
    with rt.sessions() as s, s.begin():
        rows = s.scalars(f.query().order_by(AuditEvent.seq.desc()).limit(limit)).all()
        audit.record(s, rt, "audit.search", actor=actor(request), mrn=f.mrn or None,
                     detail={"filter": f.as_dict(), "api": True})
        return [AuditEventOut(e.seq, e.ts, e.staff_no, e.action, e.outcome, e.mrn,
                              e.admission_no, e.client_ip, e.computer_name, e.detail) for e in rows]


@hookimpl
def register_routes():
    return [audit_list, audit_export, api_audit]


@hookimpl
def register_nav():
    return [NavItem("审计日志", "/audit", "audit.read", "安全审计", 800)]

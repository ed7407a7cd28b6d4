"""FHIR search parameters (ITI-67 and the Patient/Encounter searches) as SQL conditions.

Unknown parameters are refused (400 with an OperationOutcome) rather than ignored: a CDR that
believes it filtered by a parameter we do not know would otherwise receive everyone's records.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import and_, false, or_, select

from bingan.core.models import Admission, Document, Patient

_DATE = re.compile(r"^(eq|ne|gt|lt|ge|le|sa|eb|ap)?(\d{4})(?:-(\d{2})(?:-(\d{2})"
                   r"(?:T(\d{2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?(Z|[+-]\d{2}:\d{2})?)?)?)?$")
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


class SearchError(ValueError):
    """A parameter we cannot honour: answered 400 with an OperationOutcome."""


@dataclass(frozen=True)
class Token:
    system: str | None
    code: str


def tokens(raw: str) -> list[Token]:
    """``a,b`` (OR) of ``[system|]code`` tokens (``|code``: no system)."""
    out = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        if "|" in part:
            system, _, code = part.partition("|")
            out.append(Token(system or None, code))
        else:
            out.append(Token(None, part))
    if not out:
        raise SearchError("参数值为空")
    return out


def date_range(raw: str, hospital_tz: dt.tzinfo) -> tuple[str, dt.datetime, dt.datetime]:
    """``[prefix]value`` -> (prefix, start, end) of the value's precision (end exclusive); a
    value without an offset is in the hospital's time zone."""
    m = _DATE.match(raw.strip())
    if not m:
        raise SearchError(f"日期格式不正确：{raw}（例如 ge2026-01-01）")
    prefix, y, mo, d, hh, mi, ss, tz = m.groups()
    prefix = prefix or "eq"
    if prefix not in ("eq", "gt", "lt", "ge", "le"):
        raise SearchError(f"不支持的日期前缀 {prefix}（支持 eq gt lt ge le）")
    try:
        if hh is not None:
            zone = hospital_tz if tz is None else (dt.timezone.utc if tz == "Z" else dt.timezone(
                dt.timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6]))
                * (1 if tz[0] == "+" else -1)))
            start = dt.datetime(int(y), int(mo), int(d), int(hh), int(mi), int(ss or 0),
                                tzinfo=zone)
            end = start + dt.timedelta(seconds=1 if ss is not None else 60)
        elif d is not None:
            start = dt.datetime(int(y), int(mo), int(d), tzinfo=hospital_tz)
            end = start + dt.timedelta(days=1)
        elif mo is not None:
            start = dt.datetime(int(y), int(mo), 1, tzinfo=hospital_tz)
            end = (start + dt.timedelta(days=32)).replace(day=1)
        else:
            start = dt.datetime(int(y), 1, 1, tzinfo=hospital_tz)
            end = start.replace(year=start.year + 1)
    except ValueError as exc:
        raise SearchError(f"日期不存在：{raw}") from exc
    return prefix, start, end


def date_condition(column, raw: str, hospital_tz: dt.tzinfo):
    prefix, start, end = date_range(raw, hospital_tz)
    return {"eq": and_(column >= start, column < end), "ge": column >= start,
            "gt": column >= end, "le": column < end, "lt": column < start}[prefix]


def reference_id(raw: str, kind: str) -> int:
    """``Patient/12``, ``12`` or a full URL ending in ``Patient/12`` -> 12."""
    value = raw.strip().rstrip("/")
    if "/" in value:
        head, _, value = value.rpartition("/")
        if not head.endswith(kind):
            raise SearchError(f"引用应指向 {kind}：{raw}")
    if not value.isdigit() or len(value) > 12:
        raise SearchError(f"{kind} 的 id 不正确：{raw}")
    return int(value)


def patient_identifier_condition(st, rt, raw: str):
    """Admissions' patients matching ``patient.identifier`` (病案号, or 身份证 by its keyed
    hash: the number itself is encrypted at rest)."""
    from bingan.core.records import id_number_hash

    conds = []
    for t in tokens(raw):
        if t.system in (None, st.mrn_system):
            conds.append(Patient.mrn == t.code)
        if t.system == st.id_number_system:
            conds.append(Patient.id_number_hash == id_number_hash(rt, t.code))
    return or_(*conds) if conds else false()


def check_params(params, allowed: set[str]) -> None:
    unknown = sorted(k for k in params.keys() if k not in allowed and k not in (
        "_format", "_count", "_offset"))
    if unknown:
        raise SearchError(f"不支持的查询参数：{', '.join(unknown)}（支持：{', '.join(sorted(allowed))}）")
    for key in params.keys():
        if key.startswith("_") or key in ("date",):
            continue
        if len(params.getall(key)) > 1:
            raise SearchError(f"参数 {key} 只能出现一次（多个取值请用逗号分隔）")


def paging(params, st) -> tuple[int, int]:
    try:
        count = int(params.get("_count") or st.page_size)
        offset = int(params.get("_offset") or 0)
    except ValueError as exc:
        raise SearchError("_count 与 _offset 必须是整数") from exc
    if not 0 <= count <= st.max_page or not 0 <= offset <= 10_000_000:
        raise SearchError(f"_count 须在 0-{st.max_page} 之间，_offset 不能为负")
    return count, offset


def latest_versions():
    """Subquery: each admission's newest document version."""
    from sqlalchemy import func

    return (select(Document.admission_id.label("aid"), func.max(Document.version).label("v"))
            .group_by(Document.admission_id).subquery())


def valid_id(raw: str) -> str:
    if not _ID.match(raw):
        raise SearchError(f"资源 id 不正确：{raw[:70]}")
    return raw


__all__ = ["Admission", "SearchError", "Token", "check_params", "date_condition", "latest_versions",
           "paging", "patient_identifier_condition", "reference_id", "tokens", "valid_id"]

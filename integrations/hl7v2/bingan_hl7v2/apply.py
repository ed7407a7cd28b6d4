"""What each ADT event does, in one transaction per message, through ``core.intake``.

- A01 admit, A08 update, A02 transfer: the stay (and patient) as the message says, merged over
  what is on file; never reopens a discharged stay (an A01 arriving after its A03 adds its
  details and leaves the discharge). A02 moves the stay to the new department and ward and
  adds the new attending physician to the stay's treating physicians.
- A03 discharge: discharge time PV1-45 (else the event time) and 离院方式 PV1-36. For a stay not
  on file it is created from the message when PV1-44 (admit time) is there; otherwise the A03 is
  parked (AA) and applied when the stay's A01 arrives.
- A11 cancel admit, A13 cancel discharge. A03/A11/A13 carry the event time (EVN-6, EVN-2, MSH-7)
  and an older one arriving after a newer one changes nothing (AA, said so in MSA-3).
- A40 merge: PID-3 survives, MRG-1 is merged into it (core.intake.merge_patients).

Each message is stored with its ACK; the same (sender, MSH-10) again gets the same ACK and is not
applied twice. A message whose content is refused (AE) or that cannot be read (AR) writes
nothing but its log row (with the raw text, for the integrator) and an audit event.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

from bingan.core import audit, intake
from bingan.core.models import Admission
from bingan.hooks.types import AdmissionIn, PatientIn
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from bingan_hl7v2.mapping import (
    SUPPORTED,
    Adt,
    Header,
    Reject,
    build_ack,
    parse_adt,
    parse_message,
)
from bingan_hl7v2.models import Hl7Message, Hl7VisitState
from bingan_hl7v2.settings import Hl7Settings

log = logging.getLogger("bingan.hl7v2")
STATE_EVENTS = ("A01", "A03", "A11", "A13")


@dataclasses.dataclass
class Outcome:
    status: str  # applied ignored parked
    text: str
    admission_no: str | None = None


def _fields(cfg) -> dict[str, str]:
    """Where each admission field comes from in the message (for the reasons of an AE)."""
    return {
        "patient.mrn": "PID-3", "patient.name": "PID-5", "patient.sex": "PID-8",
        "patient.birth_date": "PID-7", "patient.id_number": "PID-3",
        "admission_no": cfg.admission_no_field, "visit_no": cfg.visit_no_field or "住院次数",
        "admitted_at": "PV1-44", "discharged_at": "PV1-45", "discharge_way": "PV1-36",
        "admit_department": cfg.department_field, "discharge_department": cfg.department_field,
        "front_page.attending_physician": "PV1-7", "front_page.admit_physician": "PV1-17",
        "merged.mrn": "MRG-1",
    }


def describe(problems: list[intake.Problem], cfg) -> str:
    names = _fields(cfg)
    out = []
    for p in problems:
        where = names.get(p.field)
        if where is None and p.field.startswith("front_page.treating_physicians"):
            where = "PV1-8/PV1-9"
        if where is None and p.field.startswith("diagnoses"):
            where = "DG1-3"
        shown = f"（{p.value}）" if p.value else ""
        out.append(f"{where or p.field}：{p.reason}{shown}")
    return "；".join(out)


def _merged(adm: Admission | None, adt: Adt, cfg, session: Session) -> AdmissionIn:
    """The stay as the message says, over what is on file (fields the message leaves empty
    keep their value; discharge state is not touched here)."""
    base = intake.admission_as_input(adm) if adm is not None else None
    p = base.patient if base else PatientIn(mrn=adt.mrn, name="")
    patient = PatientIn(
        mrn=adt.mrn, name=adt.name or p.name, sex=adt.sex if adt.sex != "U" else p.sex,
        birth_date=adt.birth_date or p.birth_date, id_number=adt.id_number,
        phone=adt.phone or p.phone, address=adt.address or p.address)
    extra = dict(base.extra) if base else {}
    if adt.admit_physician:
        extra["admit_physician"] = adt.admit_physician
    treating = list(extra.get("treating_physicians") or [])
    if adt.attending_physician:
        old = extra.get("attending_physician")
        if old and old != adt.attending_physician and old not in treating:
            treating.append(old)  # who treated earlier in the stay keeps reading
        extra["attending_physician"] = adt.attending_physician
    for doc in adt.other_physicians:
        if doc not in treating:
            treating.append(doc)
    if treating:
        extra["treating_physicians"] = treating
    if adt.admission_diagnosis:
        extra["admission_diagnosis"] = adt.admission_diagnosis
    if adm is not None:
        visit = adt.visit_no or adm.visit_no
    else:
        visit = adt.visit_no or intake.next_visit_no(session, adt.mrn)
    admitted = adt.admitted_at or (base.admitted_at if base else None)
    if admitted is None and adt.event == "A01":
        admitted = adt.event_at  # the admit event happened when the patient was admitted
    dept = adt.department or None
    return AdmissionIn(
        patient=patient, admission_no=adt.admission_no, visit_no=visit,
        admitted_at=admitted,  # type: ignore[arg-type]
        discharged_at=base.discharged_at if base else None,
        admit_department=(base.admit_department if base and base.admit_department else dept),
        discharge_department=dept or (base.discharge_department if base else None),
        ward=adt.ward or (base.ward if base else None),
        discharge_way=base.discharge_way if base else None,
        payment_method=base.payment_method if base else None,
        diagnoses=tuple(adt.diagnoses) if adt.diagnoses else (base.diagnoses if base else ()),
        operations=base.operations if base else (),
        signers=dict(base.signers) if base else {},
        readmission_31d=base.readmission_31d if base else False,
        total_cost=base.total_cost if base else None, extra=extra)


def _stale(session: Session, adt: Adt) -> Hl7VisitState | None:
    """The newer state event already applied to this stay, if this message is older."""
    state = session.get(Hl7VisitState, adt.admission_no)
    if state is not None and adt.event_at < state.event_at:
        return state
    return None


def _set_state(session: Session, adt: Adt) -> None:
    state = session.get(Hl7VisitState, adt.admission_no)
    if state is None:
        session.add(Hl7VisitState(admission_no=adt.admission_no, event=adt.event,
                                  event_at=adt.event_at))
    elif adt.event_at >= state.event_at:
        state.event, state.event_at = adt.event, adt.event_at
    session.flush()


def apply_event(session: Session, rt, adt: Adt, cfg, source: intake.Source,
                raw: str) -> Outcome:
    """Apply one parsed message in the caller's transaction (IntakeError: refused)."""
    label = SUPPORTED[adt.event]
    if adt.event == "A40":
        n = intake.merge_patients(session, rt, adt.mrn, adt.merge_mrn, source)
        return Outcome("applied", f"已合并：病案号 {adt.merge_mrn} 并入 {adt.mrn}（{n} 次住院）")
    if cfg.patient_classes and adt.patient_class and adt.patient_class not in cfg.patient_classes:
        return Outcome("ignored", f"非住院患者（PV1-2={adt.patient_class}），未处理",
                       adt.admission_no)
    adm = session.scalar(select(Admission).where(Admission.admission_no == adt.admission_no))
    no = adt.admission_no
    if adt.event in ("A03", "A11", "A13"):
        newer = _stale(session, adt)
        if newer is not None:
            return Outcome("ignored", f"晚到的旧消息（事件时间早于已处理的 {newer.event}），"
                                      "未改变住院状态", no)
    if adt.event == "A11":
        if adm is None:
            _set_state(session, adt)
            return Outcome("applied", "住院号不在系统中，已记录取消（其入院消息到达时不再登记为在院）",
                           no)
        intake.cancel_admission(session, rt, no, source, "HIS 取消入院（A11）")
        _set_state(session, adt)
        return Outcome("applied", "已取消入院", no)
    if adt.event == "A13":
        if adm is None:
            raise intake.IntakeError([intake.Problem("admission_no", "住院号不存在，无法取消出院",
                                                     no)])
        data = dataclasses.replace(intake.admission_as_input(adm), discharged_at=None,
                                   discharge_way=None)
        intake.record_admission(session, rt, data, source)
        _set_state(session, adt)
        return Outcome("applied", "已取消出院，患者恢复在院", no)

    if adm is None and adt.event == "A03" and adt.admitted_at is None:
        return Outcome("parked", "已收到出院消息；此次住院尚未登记（消息无 PV1-44 入院时间），"
                                 "将在入院消息到达后处理", no)
    data = _merged(adm, adt, cfg, session)
    if data.admitted_at is None:
        raise intake.IntakeError([intake.Problem("admitted_at", "住院号不在系统中，且消息没有入院时间",
                                                 no)])
    if adt.event == "A03":
        way = cfg.discharge_way_map.get(adt.disposition, adt.disposition) or None
        data = dataclasses.replace(data, discharged_at=adt.discharged_at or adt.event_at,
                                   discharge_way=way or data.discharge_way)
    if adt.event == "A02" and adm is not None and adt.department and \
            data.discharge_department != adm.discharge_department:
        moves = list(data.extra.get("transfers") or [])
        moves.append({"at": adt.event_at.isoformat(), "from": adm.discharge_department,
                      "to": adt.department, "ward": adt.ward or None})
        data = dataclasses.replace(data, extra={**data.extra, "transfers": moves})
    state = session.get(Hl7VisitState, no)
    res = intake.record_admission(session, rt, data, source)
    if adt.event in ("A01", "A03"):
        _set_state(session, adt)
    if state is not None and state.event == "A11" and adt.event_at <= state.event_at:
        # the HIS cancelled this stay after this message was sent
        intake.cancel_admission(session, rt, no, source, "HIS 已取消入院（A11 先于本消息到达）")
    text = f"已处理{label}"
    if adt.event == "A01" and res.admission.discharged_at is not None:
        text += "（此次住院已出院，入院消息晚到，未改变出院状态）"
    if adm is None:
        replayed = _replay_parked(session, rt, no, cfg)
        if replayed:
            text += f"；并处理了先到的 {replayed} 条消息"
    return Outcome("applied", text, no)


def _replay_parked(session: Session, rt, admission_no: str, cfg) -> int:
    """Apply the messages parked for this stay (oldest event first), each in a savepoint."""
    rows = list(session.scalars(select(Hl7Message).where(
        Hl7Message.status == "parked", Hl7Message.admission_no == admission_no)
        .order_by(Hl7Message.event_at, Hl7Message.id)))
    done = 0
    for row in rows:
        try:
            adt = parse_adt(row.raw or "", cfg, rt.tz)
            src = _source(adt.header, row.peer)
            with session.begin_nested():
                out = apply_event(session, rt, adt, cfg, src, row.raw or "")
        except (Reject, intake.IntakeError) as exc:
            row.status, row.ack_text = "rejected", f"入院后处理失败：{exc}"
            continue
        if out.status == "parked":
            continue
        row.status, row.ack_text, row.raw = out.status, out.text + "（入院消息到达后处理）", None
        done += 1
    return done


def _source(h: Header, peer: str | None) -> intake.Source:
    return intake.Source("hl7v2", audit.Actor(staff_no=f"hl7:{h.sending_app}"[:32],
                                              client_ip=peer, computer_name=h.sending_facility
                                              or None),
                         ref=f"{h.trigger}:{h.control_id}", authority=True)


def _ack(h: Header | None, code: str, text: str, cfg, control_id: str, tz: dt.tzinfo) -> str:
    return build_ack(h, code, text, receiving_app=cfg.receiving_application,
                     control_id=control_id, tz=tz)


def handle(rt, raw: str, peer: str | None = None) -> tuple[str, str, str]:
    """Process one received message; returns (ack code, reason, ACK message text)."""
    import secrets

    cfg = rt.settings(Hl7Settings)
    ack_id = "BA" + secrets.token_hex(8).upper()
    try:
        parsed = parse_message(raw)
        header = parsed[1]
    except Reject as r:
        log.warning("HL7 message from %s rejected: %s", peer, r.reason)
        return "AR", r.reason, _ack(None, "AR", r.reason, cfg, ack_id, rt.tz)
    if cfg.senders and header.sending_app not in cfg.senders:
        why = f"发送方 {header.sending_app or '（空）'} 未获授权（plugins.toml hl7v2.senders）"
        _log_rejected(rt, header, None, "AR", why, raw, peer)
        return "AR", why, _ack(header, "AR", why, cfg, ack_id, rt.tz)
    with rt.sessions() as s:
        seen = s.scalar(select(Hl7Message).where(Hl7Message.sender == header.sender,
                                                 Hl7Message.control_id == header.control_id))
        if seen is not None and seen.status != "rejected":
            text = seen.ack_text + "（重复的消息控制号，未再次处理）"
            return seen.ack_code, text, _ack(header, seen.ack_code, text, cfg, ack_id, rt.tz)
    try:
        adt = parse_adt(parsed, cfg, rt.tz)
    except Reject as r:
        _log_rejected(rt, header, None, "AR", r.reason, raw, peer)
        return "AR", r.reason, _ack(header, "AR", r.reason, cfg, ack_id, rt.tz)
    source = _source(header, peer)
    try:
        with rt.sessions() as s, s.begin():
            out = apply_event(s, rt, adt, cfg, source, raw)
            row = s.scalar(select(Hl7Message).where(Hl7Message.sender == header.sender,
                                                    Hl7Message.control_id == header.control_id))
            if row is None:
                row = Hl7Message(sender=header.sender, control_id=header.control_id)
                s.add(row)
            row.event, row.event_at, row.peer = adt.event, adt.event_at, peer
            row.status, row.ack_code, row.ack_text = out.status, "AA", out.text
            row.mrn, row.admission_no = adt.mrn, adt.admission_no or None
            row.raw = raw if out.status == "parked" else None
            s.flush()
    except intake.IntakeError as exc:
        why = describe(exc.problems, cfg)
        _log_rejected(rt, header, adt, "AE", why, raw, peer)
        return "AE", why, _ack(header, "AE", why, cfg, ack_id, rt.tz)
    except IntegrityError:
        # the same control id arrived on another connection at the same moment
        with rt.sessions() as s:
            seen = s.scalar(select(Hl7Message).where(Hl7Message.sender == header.sender,
                                                     Hl7Message.control_id == header.control_id))
        if seen is None:
            raise
        text = seen.ack_text + "（重复的消息控制号，未再次处理）"
        return seen.ack_code, text, _ack(header, seen.ack_code, text, cfg, ack_id, rt.tz)
    except OperationalError:
        log.exception("database unavailable while processing HL7 %s", header.control_id)
        why = "系统暂时无法处理（数据库不可用），请稍后重发"
        return "AR", why, _ack(header, "AR", why, cfg, ack_id, rt.tz)
    return "AA", out.text, _ack(header, "AA", out.text, cfg, ack_id, rt.tz)


def _log_rejected(rt, header: Header, adt: Adt | None, code: str, why: str, raw: str,
                  peer: str | None) -> None:
    """Keep a refused message (raw text for the integrator) and audit it; nothing else."""
    log.warning("HL7 %s %s from %s: %s %s", header.trigger, header.control_id, peer, code, why)
    with rt.sessions() as s, s.begin():
        row = s.scalar(select(Hl7Message).where(Hl7Message.sender == header.sender,
                                                Hl7Message.control_id == header.control_id))
        if row is None:
            row = Hl7Message(sender=header.sender[:128], control_id=header.control_id[:64] or "-")
            s.add(row)
        row.event = (header.trigger or "?")[:8]
        row.event_at = adt.event_at if adt else None
        row.peer, row.status, row.ack_code, row.ack_text = peer, "rejected", code, why
        row.mrn = adt.mrn[:32] if adt else None
        row.admission_no = (adt.admission_no[:32] or None) if adt else None
        row.raw = raw[:200_000]
        if not header.control_id:  # nothing to de-duplicate by: keep each one
            row.control_id = "-" + secrets_token()
        audit.record(s, rt, "hl7.reject", outcome="failed",
                     actor=_source(header, peer).actor, mrn=row.mrn,
                     admission_no=row.admission_no,
                     detail={"event": header.trigger, "control_id": header.control_id,
                             "ack": code, "reason": why[:1000]})


def secrets_token() -> str:
    import secrets

    return secrets.token_hex(8)

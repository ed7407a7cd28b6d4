"""From an HL7 v2 ADT message to what it says about a patient and a stay, and ACKs back.

Only the structure is checked here (``Reject``: the ACK is AR); whether the content is a valid
admission is the job of ``core.intake`` (its problems become an AE).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

import hl7
from bingan.hooks.types import DiagnosisIn

SUPPORTED = {"A01": "入院", "A02": "转科", "A03": "出院", "A08": "更新患者信息",
             "A11": "取消入院", "A13": "取消出院", "A40": "患者合并"}
_PATH = re.compile(r"^([A-Z][A-Z0-9]{2})-(\d+)(?:\.(\d+))?$")


class Reject(Exception):
    """The message cannot be processed as such (AR): unparseable, not a supported ADT event,
    required segment or field missing."""

    def __init__(self, reason: str, header: Header | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.header = header


@dataclass(frozen=True)
class Header:
    """MSH of a message: enough to answer it."""

    field_sep: str
    encoding_chars: str
    sending_app: str
    sending_facility: str
    receiving_app: str
    receiving_facility: str
    control_id: str
    trigger: str
    version: str
    processing_id: str

    @property
    def sender(self) -> str:
        return f"{self.sending_app}^{self.sending_facility}"


@dataclass
class Adt:
    header: Header
    event: str
    event_at: dt.datetime
    mrn: str = ""
    id_number: str | None = None
    name: str = ""
    sex: str = "U"
    birth_date: dt.date | None = None
    phone: str | None = None
    address: str | None = None
    admission_no: str = ""
    visit_no: int | None = None
    patient_class: str = ""
    department: str = ""
    ward: str = ""
    admitted_at: dt.datetime | None = None
    discharged_at: dt.datetime | None = None
    disposition: str = ""
    admit_physician: str = ""
    attending_physician: str = ""
    other_physicians: list[str] = field(default_factory=list)
    diagnoses: list[DiagnosisIn] = field(default_factory=list)
    admission_diagnosis: dict | None = None
    merge_mrn: str = ""


def _get(msg: hl7.Message, accessor: str) -> str:
    try:
        return str(msg[accessor]).strip()
    except (KeyError, IndexError, ValueError):
        return ""


def _path(msg: hl7.Message, path: str) -> str:
    m = _PATH.match(path)
    if not m:
        return ""
    seg, fld, comp = m.group(1), m.group(2), m.group(3) or "1"
    return _get(msg, f"{seg}.F{fld}.R1.C{comp}")


def _ts(value: str, tz: dt.tzinfo) -> dt.datetime | None:
    """An HL7 TS; without an offset it is the hospital's time (``tz``)."""
    if not value:
        return None
    try:
        t = hl7.parse_datetime(value)
    except (ValueError, TypeError):
        raise Reject(f"时间格式错误：{value}") from None
    if t is None:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=tz)


def _date(value: str) -> dt.date | None:
    if not value:
        return None
    t = _ts(value[:8], dt.timezone.utc)  # a date only: no clock to place
    return t.date() if t else None


def _xcn(msg: hl7.Message, seg: str, fld: int, rep: int = 1) -> str:
    """A doctor (XCN): the ID (staff number) if given, else the name."""
    base = f"{seg}.F{fld}.R{rep}"
    ident = _get(msg, f"{base}.C1")
    if ident:
        return ident
    return (_get(msg, f"{base}.C2") + _get(msg, f"{base}.C3")).strip()


def _reps(msg: hl7.Message, seg: str, fld: int) -> int:
    try:
        return max(1, len(msg.segment(seg)(fld)))
    except (KeyError, IndexError):
        return 0


def parse_message(text: str) -> tuple[hl7.Message, Header]:
    """Parse a raw message once: the message and its MSH (Reject if it cannot be read)."""
    text = text.replace("\r\n", "\r").replace("\n", "\r").strip("\r")
    if not text.startswith("MSH") or len(text) < 8:
        raise Reject("消息不以 MSH 段开始")
    try:
        msg = hl7.parse(text)
        msh = msg.segment("MSH")
    except (hl7.ParseException, ValueError, IndexError, KeyError, TypeError) as exc:
        raise Reject(f"无法解析消息：{exc}") from None
    return msg, Header(
        field_sep=text[3], encoding_chars=str(msh(2)) or "^~\\&",
        sending_app=_get(msg, "MSH.F3.R1.C1"), sending_facility=_get(msg, "MSH.F4.R1.C1"),
        receiving_app=_get(msg, "MSH.F5.R1.C1"), receiving_facility=_get(msg, "MSH.F6.R1.C1"),
        control_id=_get(msg, "MSH.F10"), trigger=_get(msg, "MSH.F9.R1.C2"),
        version=_get(msg, "MSH.F12") or "2.5", processing_id=_get(msg, "MSH.F11") or "P")


def parse_header(text: str) -> Header:
    """The MSH of a raw message (Reject if there is none)."""
    return parse_message(text)[1]


def parse_adt(text: str | tuple[hl7.Message, Header], cfg, tz: dt.tzinfo) -> Adt:
    """What an ADT message (raw, or already parsed by ``parse_message``) says; ``Reject``
    when it cannot be processed at all. Times without an offset are in ``tz`` (the
    hospital's)."""
    msg, header = parse_message(text) if isinstance(text, str) else text
    if not header.control_id:
        raise Reject("缺少消息控制号（MSH-10）", header)
    mtype = _get(msg, "MSH.F9.R1.C1")
    event = header.trigger or _get(msg, "EVN.F1")
    if mtype != "ADT" or event not in SUPPORTED:
        raise Reject(f"不支持的消息类型 {mtype}^{event}（支持 ADT " + "/".join(SUPPORTED) + "）",
                     header)

    def has(seg: str) -> bool:
        try:
            msg.segment(seg)
            return True
        except KeyError:
            return False

    for seg in ("PID",) + (("MRG",) if event == "A40" else ("PV1",)):
        if not has(seg):
            raise Reject(f"{event} 消息缺少 {seg} 段", header)
    event_at = (_ts(_get(msg, "EVN.F6"), tz) or _ts(_get(msg, "EVN.F2"), tz)
                or _ts(_get(msg, "MSH.F7"), tz))
    if event_at is None:
        raise Reject("缺少事件时间（EVN-2 / MSH-7）", header)
    adt = Adt(header=header, event=event, event_at=event_at)

    ids: dict[str, str] = {}
    for r in range(1, _reps(msg, "PID", 3) + 1):
        value, kind = _get(msg, f"PID.F3.R{r}.C1"), _get(msg, f"PID.F3.R{r}.C5")
        if value:
            ids.setdefault(kind, value)
            ids.setdefault("__first", value)
    adt.mrn = ids.get(cfg.mrn_id_type) or ids.get("__first", "")
    adt.id_number = ids.get(cfg.id_number_id_type)
    if not adt.mrn:
        raise Reject("缺少病案号（PID-3）", header)
    adt.name = (_get(msg, "PID.F5.R1.C1") + _get(msg, "PID.F5.R1.C2")).strip()
    sex = _get(msg, "PID.F8")[:1].upper()
    adt.sex = sex if sex in ("M", "F") else "U"
    adt.birth_date = _date(_get(msg, "PID.F7"))
    adt.phone = _get(msg, "PID.F13.R1.C1") or None
    addr = "".join(_get(msg, f"PID.F11.R1.C{c}") for c in (4, 3, 1, 2))
    adt.address = addr or None
    if event == "A40":
        adt.merge_mrn = _get(msg, "MRG.F1.R1.C1")
        if not adt.merge_mrn:
            raise Reject("A40 消息缺少被合并的病案号（MRG-1）", header)
        return adt

    adt.admission_no = _path(msg, cfg.admission_no_field)
    if not adt.admission_no:
        raise Reject(f"缺少住院号（{cfg.admission_no_field}）", header)
    if cfg.visit_no_field:
        raw = _path(msg, cfg.visit_no_field)
        if raw:
            if not raw.isdigit():
                raise Reject(f"住院次数（{cfg.visit_no_field}）不是整数：{raw}", header)
            adt.visit_no = int(raw)
    adt.patient_class = _get(msg, "PV1.F2")
    adt.department = _path(msg, cfg.department_field)
    adt.ward = _path(msg, cfg.ward_field)
    adt.admitted_at = _ts(_get(msg, "PV1.F44"), tz)
    adt.discharged_at = _ts(_get(msg, "PV1.F45"), tz)
    adt.disposition = _get(msg, "PV1.F36")
    adt.attending_physician = _xcn(msg, "PV1", 7)
    adt.admit_physician = _xcn(msg, "PV1", 17)
    for fld in (8, 9):
        for r in range(1, _reps(msg, "PV1", fld) + 1):
            doc = _xcn(msg, "PV1", fld, r)
            if doc:
                adt.other_physicians.append(doc)
    try:
        n_dg1 = len(msg.segments("DG1"))
    except KeyError:
        n_dg1 = 0
    finals = []
    for i in range(1, n_dg1 + 1):
        seg = "DG1" if i == 1 else f"DG1{i}"
        code = _get(msg, f"{seg}.F3.R1.C1")
        name = _get(msg, f"{seg}.F3.R1.C2") or _get(msg, f"{seg}.F4")
        kind = _get(msg, f"{seg}.F6").upper()
        if not code:
            continue
        if kind == "A":
            adt.admission_diagnosis = {"code": code, "name": name}
        elif kind == "F":
            finals.append((_get(msg, f"{seg}.F15") == "1", code, name))
    finals.sort(key=lambda x: not x[0])
    for i, (primary, code, name) in enumerate(finals):
        adt.diagnoses.append(DiagnosisIn(code=code, name=name or code,
                                         kind="main" if i == 0 else "other"))
    return adt


def _escape(text: str, h: Header) -> str:
    fs = h.field_sep
    chars = (h.encoding_chars + "^~\\&")[:4]
    comp, rep, esc, sub = chars[0], chars[1], chars[2], chars[3]
    out = text.replace(esc, f"{esc}E{esc}").replace(fs, f"{esc}F{esc}")
    out = out.replace(comp, f"{esc}S{esc}").replace(rep, f"{esc}R{esc}").replace(sub, f"{esc}T{esc}")
    return out.replace("\r", " ").replace("\n", " ")


def build_ack(h: Header | None, code: str, text: str, *, receiving_app: str,
              control_id: str, tz: dt.tzinfo) -> str:
    """An original-mode ACK: MSA-1 code, MSA-2 the message's control id, MSA-3 the reason;
    for AE/AR an ERR segment with the reason in ERR-8 (user message)."""
    if h is None:
        h = Header("|", "^~\\&", "", "", receiving_app, "", "", "", "2.5", "P")
    now = dt.datetime.now(tz).strftime("%Y%m%d%H%M%S")
    fs = h.field_sep
    msh = fs.join(["MSH", h.encoding_chars, receiving_app or h.receiving_app,
                   h.receiving_facility, h.sending_app, h.sending_facility, now, "",
                   f"ACK{h.encoding_chars[0]}{h.trigger}{h.encoding_chars[0]}ACK",
                   control_id, h.processing_id, h.version])
    msa = fs.join(["MSA", code, _escape(h.control_id, h), _escape(text[:400], h)])
    segs = [msh, msa]
    if code != "AA":
        err_code = "207" if code == "AE" else "200"
        c = h.encoding_chars[0]
        segs.append(fs.join(["ERR", "", "", f"{err_code}{c}{'Application internal error' if code == 'AE' else 'Unsupported message'}{c}HL70357",
                             "E", "", "", "", _escape(text[:400], h)]))
    return "\r".join(segs) + "\r"

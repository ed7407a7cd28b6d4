"""Condition notes: the digitizer's on-site assessment of the paper before capture (binding,
paper ageing, fragile or torn sheets ...), per batch and per record, chosen from a list plus
free text. The capture pages show them and steer the source: paper that a feeder would damage
(or that would jam it) is captured by camera or flatbed one sheet at a time, never through the
automatic document feeder; the batch report lists them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from bingan.core import audit
from bingan.core.models import utcnow
from bingan_capture.models import (
    BatchCondition, CaptureBatch, CaptureBatchItem, RecordCondition,
)

MAX_NOTE = 500


@dataclass(frozen=True)
class ConditionKind:
    code: str
    label: str
    group: str  # 装订 | 纸张 | 破损 | 其他
    feeder_unsafe: bool = False  # the feeder would damage the sheets or jam


CONDITIONS: dict[str, ConditionKind] = {k.code: k for k in (
    ConditionKind("bound_glued", "胶装或装订过紧，需拆订", "装订"),
    ConditionKind("bound_staples", "订书钉、装订夹需拆除", "装订"),
    ConditionKind("bound_sewn", "线装，不宜拆订", "装订", True),
    ConditionKind("paper_yellowed", "纸张泛黄老化", "纸张"),
    ConditionKind("paper_brittle", "纸张脆化易碎", "纸张", True),
    ConditionKind("paper_thin", "纸张薄软（如复写纸、薄型打印纸）", "纸张", True),
    ConditionKind("thermal_faded", "热敏纸字迹褪色", "纸张"),
    ConditionKind("ink_faint", "字迹浅淡或铅笔书写", "纸张"),
    ConditionKind("torn", "有破损、撕裂或缺角", "破损", True),
    ConditionKind("mould_water", "霉变、水渍或粘连", "破损", True),
    ConditionKind("pasted_slips", "粘贴小票或检验单（多层粘贴）", "其他", True),
    ConditionKind("oversize", "超大幅面或折叠页", "其他", True),
    ConditionKind("double_sided", "双面书写", "其他"),
)}
FEEDER_ADVICE = "请用手机拍摄或平板扫描逐页采集，不要用自动进纸器"


class ConditionError(ValueError):
    """A condition note that cannot be saved (unknown item, note too long)."""


@dataclass
class Condition:
    """What is known of one record's paper: its own note and its batches' notes."""

    flags: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # "批次 X：..." / the record's own text

    @property
    def labels(self) -> list[str]:
        return [CONDITIONS[f].label for f in self.flags if f in CONDITIONS]

    @property
    def feeder_unsafe(self) -> list[str]:
        return [CONDITIONS[f].label for f in self.flags
                if f in CONDITIONS and CONDITIONS[f].feeder_unsafe]

    @property
    def advice(self) -> str | None:
        unsafe = self.feeder_unsafe
        return f"{'、'.join(unsafe)}：{FEEDER_ADVICE}" if unsafe else None

    def __bool__(self) -> bool:
        return bool(self.flags or self.notes)


def clean(flags: list[str], note: str | None) -> tuple[list[str], str | None]:
    unknown = [f for f in flags if f not in CONDITIONS]
    if unknown:
        raise ConditionError(f"未知的状况项：{'、'.join(unknown)}")
    note = (note or "").strip() or None
    if note and len(note) > MAX_NOTE:
        raise ConditionError(f"状况说明过长（{len(note)} 字，最多 {MAX_NOTE} 字）")
    return [c for c in CONDITIONS if c in set(flags)], note


def set_batch_condition(s: Session, rt, batch_id: int, flags: list[str], note: str | None, *,
                        by: str | None, actor: audit.Actor | None = None) -> BatchCondition:
    flags, note = clean(flags, note)
    if s.get(CaptureBatch, batch_id) is None:
        raise ConditionError("批次不存在")
    row = s.get(BatchCondition, batch_id) or BatchCondition(batch_id=batch_id)
    row.flags, row.note, row.assessed_by, row.assessed_at = flags, note, by, utcnow()
    s.add(row)
    audit.record(s, rt, "capture.condition", actor=actor,
                 detail={"batch_id": batch_id, "flags": flags, "note": note})
    return row


def set_record_condition(s: Session, rt, admission, flags: list[str], note: str | None, *,
                         batch_id: int | None, by: str | None,
                         actor: audit.Actor | None = None) -> RecordCondition:
    flags, note = clean(flags, note)
    row = s.get(RecordCondition, admission.id) or RecordCondition(admission_id=admission.id)
    row.flags, row.note, row.batch_id = flags, note, batch_id
    row.assessed_by, row.assessed_at = by, utcnow()
    s.add(row)
    audit.record(s, rt, "capture.condition", actor=actor, mrn=admission.patient.mrn,
                 admission_no=admission.admission_no,
                 detail={"batch_id": batch_id, "flags": flags, "note": note})
    return row


def assessor_label(s: Session, staff_no: str | None) -> str:
    """Who assessed, as people read it: "方晓琳（R0001）", 演示数据, 系统."""
    from bingan.core.models import Staff

    if not staff_no:
        return ""
    fixed = {"demo": "演示数据", "system": "系统", "cli": "命令行"}
    if staff_no in fixed:
        return fixed[staff_no]
    name = s.scalar(select(Staff.name).where(Staff.staff_no == staff_no))
    return f"{name}（{staff_no}）" if name else staff_no


def record_conditions(s: Session, admission_ids: list[int]) -> dict[int, Condition]:
    """admission id -> its condition: the record's own note and those of its batches."""
    out = {a: Condition() for a in admission_ids}
    if not admission_ids:
        return out
    for a_id, name, bc in s.execute(
            select(CaptureBatchItem.admission_id, CaptureBatch.name, BatchCondition)
            .join(CaptureBatch, CaptureBatch.id == CaptureBatchItem.batch_id)
            .join(BatchCondition, BatchCondition.batch_id == CaptureBatch.id)
            .where(CaptureBatchItem.admission_id.in_(admission_ids))):
        c = out[a_id]
        c.flags += [f for f in bc.flags or [] if f not in c.flags]
        if bc.note:
            c.notes.append(f"批次“{name}”：{bc.note}")
    for rc in s.scalars(select(RecordCondition)
                        .where(RecordCondition.admission_id.in_(admission_ids))):
        c = out[rc.admission_id]
        c.flags += [f for f in rc.flags or [] if f not in c.flags]
        if rc.note:
            c.notes.insert(0, rc.note)
    for c in out.values():
        c.flags = [k for k in CONDITIONS if k in c.flags]
    return out


def record_condition(s: Session, admission_id: int) -> Condition:
    return record_conditions(s, [admission_id])[admission_id]


def own_conditions(s: Session, admission_ids: list[int]) -> dict[int, RecordCondition]:
    """The records' own notes (the forms edit these)."""
    if not admission_ids:
        return {}
    return {r.admission_id: r for r in s.scalars(
        select(RecordCondition).where(RecordCondition.admission_id.in_(admission_ids)))}


def check_feeder(s: Session, admission_id: int) -> None:
    """Raise ConditionError when the record's paper must not go through a feeder."""
    advice = record_condition(s, admission_id).advice
    if advice:
        raise ConditionError(f"该病案纸张状况不宜使用自动进纸器（{advice}）")

"""The deathcase report (M13, ``register_reports``): records with 离院方式 4 / 5 per discharge
month / week / day or department, how many were exported and uploaded."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bingan.core.models import Admission
from bingan.core.staff import department_names
from bingan.hooks.types import ReportChart, ReportColumn, ReportSpec

from bingan_deathcase.models import DeathcaseBatch, DeathcaseExport
from bingan_deathcase.service import WAYS


def rows(session: Session, rt, params) -> list[dict[str, Any]]:
    lo, hi = params.bounds()
    by_dept = params.group == "department"
    names = department_names(session)

    def blank(label):
        return {"period": label, "records": 0, "death": 0, "aama": 0, "exported": 0,
                "uploaded": 0, "rate": None}

    out: dict[Any, dict[str, Any]] = {} if by_dept else {b: blank(b) for b in params.buckets()}
    q = (select(Admission.id, Admission.discharged_at, Admission.discharge_department,
                Admission.discharge_way)
         .where(Admission.discharge_way.in_(WAYS), Admission.discharged_at >= lo,
                Admission.discharged_at < hi, Admission.cancelled_at.is_(None)))
    if params.department:
        q = q.where(Admission.discharge_department == params.department)
    found = list(session.execute(q))
    ids = [r[0] for r in found]
    exported: set[int] = set()
    uploaded: set[int] = set()
    for i in range(0, len(ids), 1000):
        for adm, up in session.execute(
                select(DeathcaseExport.admission_id, DeathcaseBatch.uploaded_at)
                .outerjoin(DeathcaseBatch, DeathcaseBatch.id == DeathcaseExport.batch_id)
                .where(DeathcaseExport.admission_id.in_(ids[i:i + 1000]))):
            exported.add(adm)
            if up is not None:
                uploaded.add(adm)
    for adm, dis, dept, way in found:
        if by_dept:
            r = out.setdefault(dept or "", blank(names.get(dept or "", dept or "") or "未填科室"))
        else:
            r = out[params.bucket(dis)]
        r["records"] += 1
        r["death" if way == "5" else "aama"] += 1
        r["exported"] += adm in exported
        r["uploaded"] += adm in uploaded
    res = list(out.values())
    for r in res:
        r["rate"] = round(100.0 * r["uploaded"] / r["records"], 1) if r["records"] else None
    return res


def report_specs() -> list[ReportSpec]:
    return [ReportSpec(
        key="deathcase.progress", area="死亡病例", title="死亡及非医嘱离院病历上报进度",
        description="按出院日期或科室：死亡、非医嘱离院病历数，已导出、已上传与上传率",
        query=rows, permission="deathcase.manage",
        columns=(ReportColumn("period", "出院日期 / 科室", "period", total="none"),
                 ReportColumn("records", "病历数"), ReportColumn("death", "死亡"), ReportColumn("aama", "非医嘱离院"),
                 ReportColumn("exported", "已导出"), ReportColumn("uploaded", "已上传"),
                 ReportColumn("rate", "上传率", "percent", total="ratio",
                              ratio=("uploaded", "records"))),
        chart=ReportChart("bar", "period", ("death", "aama", "uploaded")),
        groups=("month", "week", "day", "department"), dashboards=("records",), order=50)]

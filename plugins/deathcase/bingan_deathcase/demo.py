"""Demo material (``demo_loaded``): for the demo hospital's death and against-advice
discharges, labels made on some and a charge list merged on others, the charge list arriving
as a clerk's spreadsheet through the real upload path, so the worklist shows every state."""

from __future__ import annotations

import io
import random

from sqlalchemy import select

from bingan.core import audit
from bingan.core.models import Admission

from bingan_deathcase import service

ITEMS = [("床位费", "西药", "天", 45.0), ("一级护理", "护理", "天", 28.0),
         ("注射用头孢曲松钠", "西药", "支", 36.5), ("血常规", "检验", "次", 25.0),
         ("肝功能", "检验", "次", 80.0), ("胸部 CT 平扫", "检查", "次", 280.0),
         ("心电监护", "治疗", "小时", 6.0), ("吸氧", "治疗", "小时", 3.0),
         ("氯化钠注射液", "西药", "袋", 4.8), ("抢救费", "治疗", "次", 150.0)]


def demo_sheet(seed: int) -> bytes:
    """A charge list as a HIS prints it to Excel: a title row, the header, items, 合计."""
    import xlsxwriter

    rng = random.Random(seed)
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    ws = wb.add_worksheet("收费清单")
    ws.write_row(0, 0, ["住院费用明细"])
    ws.write_row(1, 0, ["日期", "类别", "项目名称", "规格", "数量", "单位", "单价", "金额"])
    total = 0.0
    r = 2
    for name, cat, unit, price in rng.sample(ITEMS, 7):
        q = rng.randint(1, 6)
        amount = round(q * price, 2)
        total += amount
        ws.write_row(r, 0, [f"2026-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}", cat, name, "",
                            q, unit, price, amount])
        r += 1
    ws.write_row(r, 0, ["合计", "", "", "", "", "", "", round(total, 2)])
    wb.close()
    return buf.getvalue()


def load(admissions, rt) -> int:
    ways = [a for a in admissions if a.discharge_way in service.WAYS]
    act = audit.Actor(staff_no="demo")
    done = 0
    with rt.sessions() as s, s.begin():
        for i, ref in enumerate(ways[:6]):
            adm = s.scalar(select(Admission).where(Admission.id == ref.id))
            if adm is None:
                continue
            if i % 3 in (0, 1):
                service.make_labels(s, rt, adm, staff_no=act.staff_no or "", actor=act)
            if i % 3 == 1:
                service.upload_charges(s, rt, adm, demo_sheet(i), "收费清单.xlsx",
                                       staff_no=act.staff_no or "", actor=act)
            done += 1
    return done

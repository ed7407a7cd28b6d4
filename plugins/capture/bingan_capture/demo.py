"""Demo page images, pushed through the real capture path (``demo_loaded``).

For about 20 demo admissions this draws what a scanner would deliver: a barcode cover sheet
(or, for some records, a barcode label on the front page) followed by 4–8 pages with Chinese
text that resemble a front page (病案首页), a discharge record, an admission record, progress
notes, an order sheet and a lab report, with a red seal on some. Each record becomes one
scanned PDF or multi-page TIFF and goes through ``ingest.receive`` *without* naming the record,
so the barcode identification runs; one file has no barcode at all (it waits in the
unidentified queue) and a few pages are deliberately out of focus (the rework queue gets
them when the imaging plugin's QC fails them). Processing runs as ordinary capture tasks (the
server's workers, or ``bingan tasks run``).
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import logging
import math
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from bingan_capture.codes import A4_300, CoverInfo, code128_image, cover_sheet_image, font
from bingan_capture.settings import CaptureSettings
from bingan.core.config import CoreSettings

log = logging.getLogger("bingan.capture.demo")
INK = (28, 28, 34)
RED = (205, 30, 38)
PAPER = (246, 244, 238)


@dataclass(frozen=True)
class DemoRecord:
    """What the demo pages print about a record."""

    barcode: str
    mrn: str
    admission_no: str
    visit_no: int
    name: str
    sex: str
    age: str
    department: str
    admitted: str
    discharged: str
    diagnoses: tuple[tuple[str, str], ...]
    operations: tuple[tuple[str, str], ...]
    hospital: str


@functools.lru_cache(maxsize=4)
def _paper_base(size: tuple[int, int]) -> Image.Image:
    """Off-white paper with a little grain (a tiled noise patch keeps it cheap)."""
    rng = np.random.default_rng(7)
    tile = np.clip(np.array(PAPER, np.int16) + rng.normal(0, 3.0, (256, 256, 1)).astype(np.int16),
                   0, 255).astype(np.uint8)
    w, h = size
    full = np.tile(tile, (math.ceil(h / 256), math.ceil(w / 256), 1))[:h, :w]
    return Image.fromarray(np.ascontiguousarray(full), "RGB")


def _paper(size: tuple[int, int], rng: random.Random) -> Image.Image:
    return _paper_base(tuple(size)).copy()


def _seal(d_img: Image.Image, center: tuple[int, int], radius: int, text: str,
          bottom: str) -> None:
    """A round red seal: ring, star, the organisation's name along the arc."""
    layer = Image.new("RGBA", d_img.size, (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    cx, cy = center
    col = RED + (200,)
    d.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), outline=col,
              width=max(3, radius // 18))
    r = radius * 0.28
    pts = []
    for i in range(10):
        ang = -math.pi / 2 + i * math.pi / 5
        rr = r if i % 2 == 0 else r * 0.4
        pts.append((cx + rr * math.cos(ang), cy + rr * math.sin(ang)))
    d.polygon(pts, fill=col)
    size = max(12, int(radius * 0.26))
    f = font(size)
    n = len(text)
    span = math.radians(220)
    for i, ch in enumerate(text):
        ang = math.radians(-90) - span / 2 + span * (i + 0.5) / n
        x = cx + radius * 0.74 * math.cos(ang)
        y = cy + radius * 0.74 * math.sin(ang)
        glyph = Image.new("RGBA", (size * 2, size * 2), (0, 0, 0, 0))
        ImageDraw.Draw(glyph).text((size, size), ch, font=f, fill=col, anchor="mm")
        glyph = glyph.rotate(-math.degrees(ang) - 90, resample=Image.Resampling.BICUBIC)
        layer.alpha_composite(glyph, (int(x - size), int(y - size)))
    d.text((cx, cy + radius * 0.55), bottom, font=font(int(size * 0.9)), fill=col, anchor="mm")
    d_img.paste(Image.alpha_composite(d_img.convert("RGBA"), layer).convert("RGB"))


def _header(d: ImageDraw.ImageDraw, w: int, s: float, rec: DemoRecord, title: str) -> int:
    d.text((w // 2, int(150 * s)), rec.hospital, font=font(int(64 * s)), fill=INK, anchor="mm")
    d.text((w // 2, int(260 * s)), title, font=font(int(88 * s)), fill=INK, anchor="mm")
    y = int(360 * s)
    line = (f"姓名：{rec.name}    性别：{rec.sex}    年龄：{rec.age}    科室：{rec.department}    "
            f"住院号：{rec.admission_no}")
    d.text((int(150 * s), y), line, font=font(int(38 * s)), fill=INK)
    y += int(64 * s)
    d.line((int(150 * s), y, w - int(150 * s), y), fill=INK, width=max(1, int(3 * s)))
    return y + int(40 * s)


def _paragraphs(d, x: int, y: int, width_chars: int, text: str, size: int, lh: int,
                y_max: int) -> int:
    f = font(size)
    for para in text.split("\n"):
        para = "　　" + para.strip()
        while para and y < y_max:
            d.text((x, y), para[:width_chars], font=f, fill=INK)
            para = para[width_chars:]
            y += lh
        y += lh // 3
    return y


PROGRESS_TEXTS = [
    "患者今日精神可，饮食睡眠尚可，二便正常。查体：神志清，双肺呼吸音清，未闻及干湿性啰音，心率{hr}次/分，律齐。"
    "腹软，无压痛及反跳痛。继续目前治疗方案，密切观察病情变化。",
    "主治医师查房：患者病情稳定，复查血常规、肝肾功能未见明显异常。同意目前诊断，嘱继续抗感染及对症支持治疗，"
    "注意监测体温及血压，必要时调整用药。",
    "患者诉轻度乏力，无发热、胸闷、气促。查体同前。今日予以复查相关指标，待结果回报后进一步评估，"
    "向患者及家属交代病情，表示理解。",
    "主任医师查房：结合病史、体征及辅助检查，诊断明确。患者恢复良好，可考虑近日出院，"
    "出院后门诊随访，按时服药，如有不适及时就诊。",
]


def _page(kind: str, rec: DemoRecord, rng: random.Random, size=A4_300) -> Image.Image:
    w, h = size
    s = w / 2480
    im = _paper(size, rng)
    d = ImageDraw.Draw(im)
    if kind == "front":
        y = _header(d, w, s, rec, "住院病案首页")
        rows = [("病案号", rec.mrn, "第几次住院", str(rec.visit_no)),
                ("入院时间", rec.admitted, "出院时间", rec.discharged),
                ("入院科别", rec.department, "出院科别", rec.department)]
        rows += [("出院诊断" if i == 0 else "其他诊断", n, "疾病编码", c)
                 for i, (c, n) in enumerate(rec.diagnoses[:4])]
        rows += [("手术名称", n, "手术编码", c) for c, n in rec.operations[:2]]
        rows += [("离院方式", "医嘱离院", "医疗付费方式", "城镇职工基本医疗保险")]
        x0, x1, x2, x3, x4 = (int(v * s) for v in (150, 470, 1290, 1610, 2330))
        rh = int(108 * s)
        f = font(int(40 * s))
        for i, (a, b, c, e) in enumerate(rows):
            yy = y + i * rh
            d.rectangle((x0, yy, x4, yy + rh), outline=INK, width=max(1, int(2 * s)))
            for x in (x1, x2, x3):
                d.line((x, yy, x, yy + rh), fill=INK, width=max(1, int(2 * s)))
            for x, t in ((x0, a), (x1, b), (x2, c), (x3, e)):
                d.text((x + int(18 * s), yy + rh // 2), t[:18], font=f, fill=INK, anchor="lm")
        y += len(rows) * rh + int(80 * s)
        for i, (role, who) in enumerate((("科主任", "陈志远"), ("主治医师", "林晓雯"),
                                         ("住院医师", "周静怡"), ("编码员", "邵文静"))):
            d.text((x0 + i * int(540 * s), y), f"{role}：", font=font(int(40 * s)), fill=INK)
            d.text((x0 + i * int(540 * s) + int(200 * s), y - int(8 * s)), who,
                   font=font(int(48 * s), serif=True), fill=(30, 40, 110))
        _seal(im, (int(1900 * s), y + int(420 * s)), int(230 * s), rec.hospital, "病案管理专用章")
    elif kind in ("discharge", "admission"):
        title = "出院记录" if kind == "discharge" else "入院记录"
        y = _header(d, w, s, rec, title)
        dx = "；".join(n for _, n in rec.diagnoses[:3])
        text = (f"入院日期：{rec.admitted}　　出院日期：{rec.discharged}\n"
                f"入院情况：患者因“{rec.diagnoses[0][1]}”入院。入院时神志清，精神可，生命体征平稳。\n"
                f"入院诊断：{dx}\n"
                "诊疗经过：入院后完善相关检查，予以规范治疗，病情逐渐好转。住院期间未发生院内感染及不良事件。\n"
                f"出院诊断：{dx}\n"
                "出院情况：患者一般情况良好，无明显不适，查体未见明显异常。\n"
                "出院医嘱：1.注意休息，清淡饮食；2.按时服药；3.出院后两周门诊复查；4.如有不适随时就诊。")
        if kind == "admission":
            text = (f"主诉：{rec.diagnoses[0][1]}相关症状 {rng.randint(2, 20)} 天。\n"
                    "现病史：患者自述近期出现不适，于当地医院就诊，症状未见明显缓解，为进一步诊治来我院，"
                    "门诊以“" + rec.diagnoses[0][1] + "”收入我科。\n"
                    "既往史：否认肝炎、结核等传染病史，否认外伤史，否认药物过敏史。\n"
                    "个人史：生于本地，无疫区居留史，无吸烟饮酒史。\n"
                    f"体格检查：T 36.{rng.randint(2, 9)}℃，P {rng.randint(64, 96)}次/分，"
                    f"R {rng.randint(16, 22)}次/分，BP {rng.randint(105, 140)}/{rng.randint(65, 90)}mmHg。\n"
                    f"初步诊断：{dx}")
        y = _paragraphs(d, int(150 * s), y + int(20 * s), 40, text, int(44 * s), int(74 * s),
                        h - int(500 * s))
        d.text((int(1500 * s), h - int(420 * s)), "医师签名：", font=font(int(44 * s)), fill=INK)
        d.text((int(1760 * s), h - int(430 * s)), "林晓雯", font=font(int(56 * s),
               serif=True), fill=(30, 40, 110))
        if kind == "discharge":
            _seal(im, (int(1950 * s), h - int(560 * s)), int(200 * s), rec.hospital, "医务科")
    elif kind == "progress":
        y = _header(d, w, s, rec, "病　程　记　录")
        day = dt.date.fromisoformat(rec.admitted[:10])
        for i in range(4):
            stamp = (day + dt.timedelta(days=i + rng.randint(0, 1))).isoformat()
            d.text((int(150 * s), y), f"{stamp} {rng.randint(8, 10):02d}:{rng.randint(0, 59):02d}",
                   font=font(int(42 * s)), fill=INK)
            y += int(70 * s)
            text = PROGRESS_TEXTS[(i + rng.randint(0, 3)) % 4].format(hr=rng.randint(62, 98))
            y = _paragraphs(d, int(150 * s), y, 40, text, int(42 * s), int(68 * s),
                            h - int(300 * s))
            d.text((int(1800 * s), y), "医师：周静怡", font=font(int(42 * s), serif=True),
                   fill=(30, 40, 110))
            y += int(110 * s)
            if y > h - int(700 * s):
                break
    elif kind in ("orders", "lab"):
        title = "长期医嘱单" if kind == "orders" else "检验报告单"
        y = _header(d, w, s, rec, title)
        if kind == "orders":
            heads = ("开始日期", "医嘱内容", "医师", "停止日期")
            items = ["二级护理", "普食", "0.9%氯化钠注射液 100ml 静滴 qd", "阿司匹林肠溶片 100mg 口服 qd",
                     "阿托伐他汀钙片 20mg 口服 qn", "头孢呋辛钠 1.5g 静滴 bid", "测血压 bid",
                     "奥美拉唑肠溶胶囊 20mg 口服 qd", "氯化钾缓释片 0.5g 口服 tid"]
        else:
            heads = ("项目", "结果", "单位", "参考范围")
            items = ["白细胞计数", "红细胞计数", "血红蛋白", "血小板计数", "谷丙转氨酶", "谷草转氨酶",
                     "肌酐", "尿素氮", "葡萄糖", "总胆固醇", "甘油三酯", "C反应蛋白"]
        xs = [int(v * s) for v in (150, 560, 1600, 1950, 2330)]
        rh = int(96 * s)
        f = font(int(38 * s))
        for col, t in enumerate(heads):
            d.text((xs[col] + int(16 * s), y + rh // 2), t, font=f, fill=INK, anchor="lm")
        for i, item in enumerate([""] + items):
            yy = y + i * rh
            d.rectangle((xs[0], yy, xs[-1], yy + rh), outline=INK, width=max(1, int(2 * s)))
            for x in xs[1:-1]:
                d.line((x, yy, x, yy + rh), fill=INK, width=max(1, int(2 * s)))
            if not item:
                continue
            if kind == "orders":
                cells = (rec.admitted[:10], item, "林晓雯", rec.discharged[:10])
            else:
                cells = (item, f"{rng.uniform(1, 9):.2f}", "×10^9/L" if i < 5 else "mmol/L",
                         "3.50-9.50")
            for col, t in enumerate(cells):
                d.text((xs[col] + int(16 * s), yy + rh // 2), t, font=f, fill=INK, anchor="lm")
        if kind == "lab":
            d.text((int(150 * s), y + (len(items) + 2) * rh), "检验者：王芳　　审核者：李明　　报告日期："
                   + rec.discharged[:10], font=font(int(40 * s)), fill=INK)
    return im


def _label(im: Image.Image, barcode: str) -> None:
    """A record barcode label stuck on the top right of a front page."""
    w, _ = im.size
    s = w / 2480
    bc = code128_image(barcode, module_px=max(2, int(4 * s)), height_px=int(150 * s))
    pad = int(20 * s)
    lab = Image.new("RGB", (bc.width + 2 * pad, bc.height + int(90 * s)), "white")
    lab.paste(bc.convert("RGB"), (pad, pad))
    ImageDraw.Draw(lab).text((lab.width // 2, bc.height + int(55 * s)), barcode,
                             font=font(int(40 * s)), fill=INK, anchor="mm")
    im.paste(lab, (w - lab.width - int(120 * s), int(40 * s)))


def scanned(im: Image.Image, rng: random.Random, blur: bool = False) -> Image.Image:
    """What a scanner adds: a small skew, and (on purpose, for the demo) a blur."""
    if rng.random() < 0.4:  # some sheets go in a little askew
        angle = rng.uniform(-1.2, 1.2)
        im = im.rotate(angle, resample=Image.Resampling.NEAREST, expand=False, fillcolor=PAPER)
    if blur:
        im = im.filter(ImageFilter.GaussianBlur(radius=7))
    return im


KINDS = ["front", "discharge", "admission", "progress", "progress", "orders", "lab", "progress"]


def record_pages(rec: DemoRecord, rng: random.Random, n_pages: int, *, cover: bool = True,
                 blur_page: int | None = None, size=A4_300) -> list[Image.Image]:
    """The images of one record as scanned: optional cover sheet, then ``n_pages`` pages."""
    out = []
    if cover:
        info = CoverInfo(rec.barcode, rec.mrn, rec.admission_no, rec.visit_no, rec.name,
                         rec.discharged[:10], rec.department, rec.hospital)
        out.append(cover_sheet_image(info, size).convert("RGB"))
    for i in range(n_pages):
        page = _page(KINDS[i % len(KINDS)], rec, rng, size)
        if i == 0 and not cover:
            _label(page, rec.barcode)
        out.append(scanned(page, rng, blur=(i == blur_page)))
    return out


def _forget_encoder_state(images: list[Image.Image]) -> None:
    # Pillow leaves the last save's encoder settings on appended images, and a later save in
    # another format then fails ("function takes exactly 6 arguments"): drop them.
    for im in images:
        for attr in ("encoderinfo", "encoderconfig"):
            if hasattr(im, attr):
                delattr(im, attr)


def pdf_bytes(images: list[Image.Image], dpi: int = 300, quality: int = 85) -> bytes:
    """A scanned PDF: one JPEG per page (as scanner software writes them)."""
    buf = io.BytesIO()
    images[0].save(buf, "PDF", resolution=float(dpi), save_all=True, append_images=images[1:],
                   quality=quality)
    _forget_encoder_state(images)
    return buf.getvalue()


def tiff_bytes(images: list[Image.Image], dpi: int = 300) -> bytes:
    """A multi-page TIFF (JPEG-compressed frames, as many scanners save colour pages)."""
    buf = io.BytesIO()
    images[0].save(buf, "TIFF", save_all=True, append_images=images[1:], compression="jpeg",
                   dpi=(dpi, dpi))
    _forget_encoder_state(images)
    return buf.getvalue()


def demo_record(adm, hospital: str, tz: dt.tzinfo) -> DemoRecord:
    """DemoRecord of a core Admission row."""
    p = adm.patient
    sex = {"M": "男", "F": "女"}.get(p.sex, "未知")
    age = f"{adm.age_years}岁" if adm.age_years is not None else "—"

    def fmt(t):
        return t.astimezone(tz).strftime("%Y-%m-%d %H:%M") if t else "—"

    dept_code = adm.discharge_department or adm.admit_department or ""
    from sqlalchemy import inspect as sa_inspect, select

    from bingan.core.models import Department

    session = sa_inspect(adm).session
    dept = session.scalar(select(Department.name).where(Department.code == dept_code)) \
        if session is not None and dept_code else None
    dx = tuple((x.code, x.name) for x in adm.diagnoses if x.kind in ("main", "other")) or \
        (("R69", "待查"),)
    ops = tuple((o.code, o.name) for o in adm.operations)
    return DemoRecord(adm.barcode, p.mrn, adm.admission_no, adm.visit_no, p.name, sex, age,
                      dept or dept_code, fmt(adm.admitted_at),
                      fmt(adm.discharged_at), dx, ops, hospital)


DEMO_ROLE_PERMISSIONS = {"clerk": ["capture.operate"], "records": ["capture.operate", "capture.plan"]}


def grant_demo_roles(rt) -> None:
    """Demo only: the record room's built-in roles get the capture capabilities, so the demo
    clerks can use the capture pages (a real hospital sets this in the role admin page)."""
    from sqlalchemy import select

    from bingan.core import audit
    from bingan.core.models import Role

    with rt.sessions() as s, s.begin():
        for role in s.scalars(select(Role).where(Role.name.in_(DEMO_ROLE_PERMISSIONS))):
            want = [p for p in DEMO_ROLE_PERMISSIONS[role.name] if p not in (role.permissions or [])]
            if want:
                role.permissions = list(role.permissions or []) + want
                audit.record(s, rt, "admin.role.update", actor=audit.Actor(staff_no="demo"),
                             detail={"role": role.name, "added": want, "why": "demo"})


def load_demo_pages(rt, admissions, size: tuple[int, int] = A4_300) -> dict:
    """``demo_loaded``: draw and receive the demo records' page images (see module doc).
    ``size`` is the page size in pixels (A4 at 300 DPI; tests draw smaller pages)."""
    from sqlalchemy import select

    from bingan.core import audit
    from bingan.core.models import Admission
    from bingan_capture.batches import Row, create_batch, today
    from bingan_capture.ingest import receive

    grant_demo_roles(rt)
    n = rt.settings(CaptureSettings).demo_records
    discharged = [a for a in admissions if a.discharged_at is not None]
    chosen = discharged[:n]
    if not chosen:
        return {"records": 0}
    rng = random.Random(20260501)
    hospital = rt.settings(CoreSettings).hospital_name
    who = audit.Actor(staff_no="demo")
    stats = {"records": 0, "files": 0, "pages": 0}
    blur_at = {3: 2, 9: 4, 15: 1}  # record index -> page index drawn out of focus
    expected = []
    for i, ref in enumerate(chosen):
        with rt.sessions() as s:
            adm = s.scalar(select(Admission).where(Admission.id == ref.id))
            rec = demo_record(adm, hospital, rt.tz)
        n_pages = rng.randint(4, 8)
        cover = i % 5 != 4  # every fifth record carries a label on its front page instead
        images = record_pages(rec, rng, n_pages, cover=cover, blur_page=blur_at.get(i),
                              size=size)
        if i % 6 == 1:
            data, name = tiff_bytes(images), f"scan_{i + 1:03d}.tif"
        else:
            data, name = pdf_bytes(images), f"scan_{i + 1:03d}.pdf"
        # the record room expects one more page than was scanned for one record (count check)
        expected.append(Row(i + 1, ref.admission_no, n_pages + (1 if i == 7 else 0)))
        with rt.sessions() as s, s.begin():
            receive(s, rt, data, name, "demo", by="demo", actor=who)
        stats["records"] += 1
        stats["files"] += 1
        stats["pages"] += len(images)
    # a loose supplement without cover or label: waits for a clerk in the unidentified queue
    ref = chosen[0]
    with rt.sessions() as s:
        rec = demo_record(s.get(Admission, ref.id), hospital, rt.tz)
    loose = [scanned(_page("lab", rec, rng, size), rng)]
    with rt.sessions() as s, s.begin():
        receive(s, rt, pdf_bytes(loose), "补充检验报告.pdf", "demo", by="demo", actor=who)
        start = today(rt.tz) - dt.timedelta(days=3)
        batch = create_batch(s, rt, "演示批次 第1批", start, 60, expected, by="demo",
                             actor=who, note="演示数据：20 份出院病案")
        # the on-site assessment of the paper: the batch, and one record with torn sheets
        from bingan_capture.conditions import set_batch_condition, set_record_condition

        bid = batch.id
        set_batch_condition(s, rt, bid, ["bound_staples", "paper_yellowed"],
                            "装订夹需拆除后扫描", by="demo", actor=who)
        set_record_condition(s, rt, s.get(Admission, chosen[-1].id), ["torn", "pasted_slips"],
                             "检验单多层粘贴，首页右下角撕裂", batch_id=bid, by="demo", actor=who)
    stats["files"] += 1
    stats["pages"] += 1
    log.info("demo capture: %s", stats)
    return stats

"""A page corpus independent of ``synth``: other fonts, layouts and captures, in two parts.

``synth`` drew the pages the cleanup was first tuned on (one font, one layout, three capture
styles). This module draws pages the way other hospitals' records look, with its own layouts
and capture models, and splits them into two parts:

- ``tuning``: settings may be fitted on these pages;
- ``validation``: nothing is fitted on them; benches report them beside the tuning part.

The parts differ in fonts (tuning: Noto Sans CJK SC, WenQuanYi Zen Hei, AR PL UMing;
validation: Noto Serif CJK SC, WenQuanYi Micro Hei, AR PL UKai — all Debian packages,
found through fontconfig) and in the sentences drawn (each part has its own half of the
phrase pool), and every page has its own seed. Both parts use every layout and capture.

Layouts: ``prose`` (one column), ``two_column``, ``lab_table`` (ruled lab sheet),
``form`` (boxed front-page form), ``landscape`` (orders sheet on a landscape page),
``sparse`` (a few lines), ``stamp`` (seals over the text), ``handwriting`` (printed form
header, handwriting-like lines in blue ink).

Captures: ``scan`` (flatbed at 200-600 DPI, JPEG quality 60-95), ``copy2`` (a photocopy of
a photocopy), ``phone`` (12 MP photo in perspective on a desk, uneven light, shadow),
``phone_curl`` (the same of a page curled at the binding of a bound record), ``phone_glare``
(the same with a reflection of a lamp on the paper). Every page lies in one of the four
quarter turns (``turn``: counter-clockwise degrees the page was turned by).

Truth: ``lines`` (text, box on the flat page in page pixels, kind: print, title, table, hand,
or seal — a seal's ring text, which an OCR may or may not read) for OCR; ``turn``;
``paper`` and ``effective_dpi``; ``glare`` (boxes of saturated light in image pixels);
``curl_mm`` (the depth of the curl at the binding).
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

PARTS = ("tuning", "validation")
LAYOUTS = ("prose", "two_column", "lab_table", "form", "landscape", "sparse", "stamp",
           "handwriting")
CAPTURES = ("scan", "copy2", "phone", "phone_curl", "phone_glare")
PAPERS_MM = {"A4": (210.0, 297.0), "A5": (148.0, 210.0), "B5": (176.0, 250.0),
             "16K": (184.0, 260.0)}

FONTS = {
    "tuning": ("Noto Sans CJK SC", "WenQuanYi Zen Hei", "AR PL UMing CN"),
    "validation": ("Noto Serif CJK SC", "WenQuanYi Micro Hei", "AR PL UKai CN"),
}
HAND_FONT = {"tuning": "AR PL UMing CN", "validation": "AR PL UKai CN"}

_PHRASES = (
    "患者主诉间断上腹痛两月余，进食后加重，伴反酸嗳气。",
    "查体见腹部平软，剑突下轻压痛，无反跳痛，肠鸣音正常。",
    "胃镜检查提示胃窦部溃疡，大小约零点八厘米，幽门螺杆菌阳性。",
    "予以四联根除治疗两周，症状逐渐缓解，饮食恢复正常。",
    "患者咳嗽咳痰一周，伴发热，最高体温三十八度九，自服药物无效。",
    "胸部CT示右下肺斑片状阴影，考虑社区获得性肺炎。",
    "入院后给予头孢曲松抗感染、化痰及补液治疗，体温第三日恢复正常。",
    "复查血常规白细胞计数降至正常范围，C反应蛋白明显下降。",
    "患者右膝关节疼痛伴活动受限三年，上下楼梯时明显。",
    "X线片示右膝关节间隙变窄，骨赘形成，诊断为膝骨关节炎。",
    "在腰硬联合麻醉下行右全膝关节置换术，手术顺利，出血约一百毫升。",
    "术后切口甲级愈合，指导患者进行功能锻炼，可扶助行器行走。",
    "患者突发左侧肢体无力四小时，言语含糊，急诊送入我院。",
    "头颅MRI示右侧基底节区急性脑梗死，予以抗血小板及改善循环治疗。",
    "康复科会诊后制订康复计划，左上肢肌力由二级恢复至四级。",
    "既往糖尿病史八年，口服二甲双胍，空腹血糖控制在七毫摩尔左右。",
    "孕三十九周，规律宫缩六小时入院，胎心率一百四十次每分。",
    "经阴道分娩一活女婴，体重三千二百克，阿氏评分十分。",
    "产后子宫收缩好，阴道流血少，母乳喂养，母婴情况良好。",
    "患儿发热伴皮疹三天，手足及口腔可见疱疹，诊断为手足口病。",
    "给予隔离、退热及对症支持治疗，患儿精神好转，皮疹消退。",
    "告知患者及家属手术风险及可能出现的并发症，家属表示理解并签字。",
    "术中见胆囊壁增厚，与周围组织粘连，胆囊管内可触及结石一枚。",
    "术后予禁食、补液、抑酸及预防感染治疗，引流管于第二天拔除。",
    "出院医嘱：清淡饮食，避免劳累，两周后门诊复查，不适随诊。",
    "心电监护示窦性心律，心率七十八次每分，血氧饱和度百分之九十八。",
    "血气分析示氧分压六十二毫米汞柱，给予鼻导管吸氧每分钟三升。",
    "护理措施：协助翻身拍背，指导有效咳嗽，观察痰液颜色及性状。",
    "患者夜间睡眠可，饮食正常，大小便无异常，生命体征平稳。",
    "甲状腺彩超示左叶结节，大小约一点二乘零点九厘米，边界清。",
    "在全麻下行甲状腺左叶切除术，术中冰冻病理提示结节性甲状腺肿。",
    "病理诊断：慢性胆囊炎伴胆囊结石，黏膜慢性炎细胞浸润。",
    "输血前检查乙肝表面抗原阴性，丙肝抗体阴性，梅毒抗体阴性。",
    "输注悬浮红细胞两单位，过程顺利，无输血反应发生。",
    "转科记录：患者病情稳定，转入康复医学科继续治疗。",
    "上级医师查房后指示：继续目前治疗方案，密切观察病情变化。",
    "患者诉头晕，测血压一百六十五比九十五毫米汞柱，予降压处理。",
    "术前讨论：诊断明确，手术指征明确，无绝对手术禁忌证。",
    "患者病情危重，已向家属交代病情并下达病危通知书。",
    "抢救记录：患者突发意识丧失，立即行心肺复苏，五分钟后恢复自主心律。",
)
_LAB = (
    ("红细胞计数", "4.35", "10^12/L", "4.3-5.8"), ("白细胞计数", "11.2", "10^9/L", "3.5-9.5"),
    ("血红蛋白", "118", "g/L", "130-175"), ("血小板计数", "302", "10^9/L", "125-350"),
    ("淋巴细胞百分比", "18.6", "%", "20-50"), ("单核细胞计数", "0.52", "10^9/L", "0.1-0.6"),
    ("总蛋白", "66.4", "g/L", "65-85"), ("白蛋白", "38.2", "g/L", "40-55"),
    ("总胆红素", "15.7", "μmol/L", "0-21"), ("直接胆红素", "4.2", "μmol/L", "0-8"),
    ("谷草转氨酶", "28", "U/L", "15-40"), ("碱性磷酸酶", "96", "U/L", "45-125"),
    ("尿素", "5.6", "mmol/L", "3.1-8.0"), ("尿酸", "412", "μmol/L", "208-428"),
    ("葡萄糖", "6.8", "mmol/L", "3.9-6.1"), ("总胆固醇", "5.12", "mmol/L", "0-5.2"),
    ("甘油三酯", "1.86", "mmol/L", "0-1.7"), ("钠", "139", "mmol/L", "137-147"),
    ("氯", "101", "mmol/L", "99-110"), ("钙", "2.31", "mmol/L", "2.11-2.52"),
    ("凝血酶原时间", "12.1", "s", "9.8-12.1"), ("D-二聚体", "0.38", "mg/L", "0-0.55"),
    ("降钙素原", "0.12", "ng/mL", "<0.05"), ("糖化血红蛋白", "7.2", "%", "4-6"),
)
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董"
_GIVEN = "建国华明丽红军平英秀兰芳伟强静敏磊洋艳勇杰娟涛超霞刚桂玉萍斌波辉鹏宁"
_HOSPITALS = ("滨江县人民医院", "青山市第二人民医院", "南湖区中医院", "东岭市妇幼保健院",
              "西川医科大学附属医院", "北港市中心医院")
_TITLES = ("出院记录", "入院记录", "日常病程记录", "手术记录", "会诊记录", "护理记录单",
           "长期医嘱单", "检验报告单", "住院病案首页", "手术知情同意书", "麻醉记录单",
           "病理诊断报告单")
_DEPTS = ("消化内科", "呼吸与危重症医学科", "关节外科", "神经内科", "产科", "儿科",
          "肝胆外科", "甲状腺外科", "心血管内科", "康复医学科")
_ORDERS = ("一级护理", "低盐低脂饮食", "头孢曲松钠针2g 静滴 每日一次",
           "氯化钾缓释片1g 口服 每日三次",
           "血常规", "肝肾功能电解质", "胸部CT平扫", "吸氧 每分钟3升", "心电监护",
           "奥美拉唑肠溶胶囊20mg 口服 每日两次", "阿托伐他汀钙片20mg 口服 每晚一次",
           "0.9%氯化钠注射液250ml 静滴", "测血压 每日两次", "留置导尿", "雾化吸入 每日两次",
           "停病危", "出院带药")


def _phrases(part: str) -> tuple[str, ...]:
    """This part's half of the phrase pool (split by a hash, not by position)."""
    want = 0 if part == "tuning" else 1
    return tuple(p for p in _PHRASES
                 if hashlib.sha256(p.encode()).digest()[0] % 2 == want)


@functools.lru_cache(maxsize=None)
def font_file(family: str) -> tuple[str, int]:
    """(path, face index) of the regular face of a font family, among the installed faces
    that really draw Chinese (bingan.core.fonts); RuntimeError when the family is missing.
    The corpus names its families on purpose: its two parts differ in them."""
    from bingan.core import fonts

    try:
        faces = [f for f in fonts.available() if f.family.lower() == family.lower()]
    except fonts.FontMissing as exc:
        raise RuntimeError(str(exc)) from exc
    if not faces:
        raise RuntimeError(f"font {family!r} is not installed (Debian: fonts-noto-cjk, "
                           "fonts-wqy-zenhei, fonts-wqy-microhei, fonts-arphic-uming, "
                           "fonts-arphic-ukai)")
    best = min(faces, key=lambda f: abs(f.weight - fonts.REGULAR))
    return best.path, best.index


def available_fonts(part: str) -> tuple[str, ...]:
    out = []
    for fam in FONTS[part]:
        try:
            font_file(fam)
            out.append(fam)
        except RuntimeError:
            pass
    return tuple(out)


@functools.lru_cache(maxsize=128)
def _font(family: str, px: int) -> ImageFont.FreeTypeFont:
    path, index = font_file(family)
    return ImageFont.truetype(path, max(6, px), index=index)


@dataclass(frozen=True)
class Line:
    text: str
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 on the flat page (pixels at ``dpi``)
    kind: str = "print"  # print / hand / table / title


@dataclass
class CorpusPage:
    seed: int
    part: str
    layout: str
    capture: str
    font: str
    paper: str
    dpi: float  # resolution the flat page was drawn at
    flat: np.ndarray  # the flat page, upright (BGR)
    image: np.ndarray  # the capture (BGR), turned by ``turn``
    turn: int  # the page lies turned by this many degrees counter-clockwise
    lines: list[Line]
    effective_dpi: float  # paper resolution in ``image``
    jpeg_quality: int
    glare: list[tuple[int, int, int, int]] = field(default_factory=list)  # boxes in ``image``
    curl_mm: float = 0.0
    skew: float = 0.0  # text skew on the glass / in the photo (degrees, ccw), scans and copies
    extra: dict = field(default_factory=dict)

    @property
    def source(self) -> str:
        """The capture source the platform would declare."""
        return {"scan": "scanner", "copy2": "photocopy"}.get(self.capture, "camera")

    @property
    def text(self) -> str:
        """The text an OCR must find (seal text left out)."""
        return "\n".join(ln.text for ln in self.lines if ln.kind != "seal")

    def jpeg(self) -> bytes:
        from bingan_imaging.codec import encode_jpeg

        dpi = None if self.source == "camera" else self.effective_dpi
        return encode_jpeg(self.image, self.jpeg_quality, dpi)


# ------------------------------------------------------------------------------- drawing


class _Canvas:
    def __init__(self, w_mm: float, h_mm: float, dpi: float, fonts: tuple[str, ...],
                 rng: np.random.Generator):
        self.dpi, self.rng, self.fonts = dpi, rng, fonts
        self.W, self.H = self.px(w_mm), self.px(h_mm)
        self.img = Image.new("RGB", (self.W, self.H), (255, 255, 255))
        self.d = ImageDraw.Draw(self.img)
        self.lines: list[Line] = []
        self.ink = tuple(int(v) for v in rng.integers(10, 45, 3))

    def px(self, mm: float) -> int:
        return int(round(mm / 25.4 * self.dpi))

    def font(self, size_mm: float, family: str | None = None) -> ImageFont.FreeTypeFont:
        return _font(family or self.fonts[0], self.px(size_mm))

    def text(self, x: float, y: float, s: str, size_mm: float, kind: str = "print",
             family: str | None = None, fill=None, record: bool = True) -> int:
        """Draw ``s`` with its top-left at (x, y) px; returns its right end."""
        f = self.font(size_mm, family)
        self.d.text((x, y), s, font=f, fill=fill or self.ink)
        x0, y0, x1, y1 = self.d.textbbox((x, y), s, font=f)
        if record and s.strip():
            self.lines.append(Line(s, (int(x0), int(y0), int(x1), int(y1)), kind))
        return int(x1)

    def centered(self, y: float, s: str, size_mm: float, kind: str = "title") -> None:
        f = self.font(size_mm)
        self.text((self.W - f.getlength(s)) / 2, y, s, size_mm, kind)

    def wrap(self, s: str, size_mm: float, width: float, indent: float = 0.0) -> list[str]:
        f = self.font(size_mm)
        out, cur, first = [], "", True
        for ch in s:
            lim = width - (indent if first else 0)
            if cur and f.getlength(cur + ch) > lim:
                if ch in "，。、；：）”％%":
                    cur, ch = cur[:-1], cur[-1] + ch
                out.append(cur)
                cur, first = ch, False
            else:
                cur += ch
        if cur:
            out.append(cur)
        return out

    def rule(self, x0, y0, x1, y1, w_mm: float = 0.25) -> None:
        self.d.line([(x0, y0), (x1, y1)], fill=self.ink, width=max(1, self.px(w_mm)))

    def array(self) -> np.ndarray:
        return np.asarray(self.img)[:, :, ::-1].copy()


def _name(rng) -> str:
    return _SURNAMES[rng.integers(len(_SURNAMES))] + "".join(
        _GIVEN[rng.integers(len(_GIVEN))] for _ in range(int(rng.integers(1, 3))))


def _header(c: _Canvas, rng, y: float, size: float, left: float, right: float) -> float:
    hosp = _HOSPITALS[rng.integers(len(_HOSPITALS))]
    c.centered(y, hosp, size * 1.7)
    y += c.px(size * 1.7 * 1.45)
    c.centered(y, _TITLES[rng.integers(len(_TITLES))], size * 1.35)
    y += c.px(size * 1.35 * 1.7)
    fields = [f"姓名：{_name(rng)}", f"性别：{'男女'[rng.integers(2)]}",
              f"年龄：{rng.integers(1, 95)}岁", f"科室：{_DEPTS[rng.integers(len(_DEPTS))]}",
              f"住院号：{rng.integers(10**7, 10**8)}"]
    x = left
    for fld in fields:
        f = c.font(size)
        if x + f.getlength(fld) > right:
            x = left
            y += c.px(size * 1.6)
        x = c.text(x, y, fld, size) + c.px(size * 1.5)
    y += c.px(size * 1.6)
    c.rule(left, y, right, y, 0.35)
    return y + c.px(size)


def _paragraphs(c: _Canvas, rng, pool, x0: float, x1: float, y: float, y_end: float,
                size: float, spacing: float, n_par: int) -> float:
    indent = c.font(size).getlength("中中")
    for _ in range(n_par):
        k = int(rng.integers(2, 5))
        s = "".join(pool[i] for i in rng.choice(len(pool), size=k, replace=False))
        for i, ln in enumerate(c.wrap(s, size, x1 - x0, indent)):
            if y + c.px(size) > y_end:
                return y
            c.text(x0 + (indent if i == 0 else 0), y, ln, size)
            y += c.px(size * spacing)
        y += c.px(size * 0.4)
    return y


def _signature(c: _Canvas, rng, x: float, y: float, size: float, hand_font: str) -> None:
    end = c.text(x, y, "医师签名：", size)
    blue = (30, 45, 140) if rng.random() < 0.7 else (20, 20, 20)
    _hand_line(c, rng, end + c.px(2), y - c.px(1), _name(rng), size * 1.5, hand_font, blue)
    c.text(x, y + c.px(size * 2), f"日期：{rng.integers(2015, 2026)}年{rng.integers(1, 13)}月"
           f"{rng.integers(1, 29)}日", size)


def _hand_line(c: _Canvas, rng, x: float, y: float, s: str, size: float, family: str,
               colour) -> int:
    """Handwriting-like: each character at its own size, lift and slant (rotated glyph)."""
    x0, y_top, y_bot = x, math.inf, -math.inf
    for ch in s:
        sz = size * rng.uniform(0.88, 1.12)
        f = c.font(sz, family)
        g = Image.new("L", (c.px(sz * 1.6), c.px(sz * 1.6)), 0)
        ImageDraw.Draw(g).text((c.px(sz * 0.3), c.px(sz * 0.15)), ch, font=f, fill=255)
        g = g.rotate(float(rng.uniform(-8, 8)), resample=Image.Resampling.BILINEAR)
        dy = c.px(rng.uniform(-0.6, 0.6))
        col = Image.new("RGB", g.size, tuple(int(v) for v in colour))
        c.img.paste(col, (int(x - c.px(sz * 0.3)), int(y + dy)), g)
        bb = g.getbbox()
        if bb:
            y_top = min(y_top, y + dy + bb[1])
            y_bot = max(y_bot, y + dy + bb[3])
        x += f.getlength(ch) * rng.uniform(0.95, 1.15)
    if s.strip() and y_top < y_bot:
        c.lines.append(Line(s, (int(x0), int(y_top), int(x), int(y_bot)), "hand"))
    return int(x)


def _seal(c: _Canvas, rng, cx: float, cy: float, d_mm: float, text: str) -> None:
    """A red round seal stamped over whatever is there (multiplied, as ink is)."""
    size = c.px(d_mm) + 8
    m = Image.new("L", (size, size), 0)
    dd = ImageDraw.Draw(m)
    r = c.px(d_mm) / 2
    dd.ellipse([4, 4, size - 4, size - 4], outline=255, width=max(2, c.px(0.9)))
    f = c.font(d_mm * 0.13)
    for i, ch in enumerate(text):
        a = math.radians(-150 + 300 * i / max(1, len(text) - 1))
        px_, py_ = size / 2 + 0.72 * r * math.sin(a), size / 2 - 0.72 * r * math.cos(a)
        g = Image.new("L", (c.px(d_mm * 0.2), c.px(d_mm * 0.2)), 0)
        ImageDraw.Draw(g).text((0, 0), ch, font=f, fill=255)
        g = g.rotate(-math.degrees(a), resample=Image.Resampling.BILINEAR)
        m.paste(255, (int(px_ - g.size[0] / 2), int(py_ - g.size[1] / 2)), g)
    star = [(size / 2 + (0.2 if k % 2 == 0 else 0.08) * r * math.sin(k * math.pi / 5),
             size / 2 - (0.2 if k % 2 == 0 else 0.08) * r * math.cos(k * math.pi / 5))
            for k in range(10)]
    dd.polygon(star, fill=255)
    mask = np.asarray(m, np.float32) / 255.0 * rng.uniform(0.6, 0.9)
    page = np.asarray(c.img).astype(np.float32)
    x0, y0 = int(cx - size / 2), int(cy - size / 2)
    xa, ya = max(0, x0), max(0, y0)
    xb, yb = min(c.W, x0 + size), min(c.H, y0 + size)
    if xb <= xa or yb <= ya:
        return
    mm = mask[ya - y0:yb - y0, xa - x0:xb - x0, None]
    red = np.array([200, 35, 40], np.float32) / 255.0  # RGB
    page[ya:yb, xa:xb] = page[ya:yb, xa:xb] * (1 - mm + mm * red)
    c.img = Image.fromarray(np.clip(page, 0, 255).astype(np.uint8))
    c.d = ImageDraw.Draw(c.img)
    # the seal's own text is on the page too (an OCR may read it: not an error)
    c.lines.append(Line(text, (xa, ya, xb, yb), "seal"))


def _table(c: _Canvas, rng, x0: float, x1: float, y: float, size: float,
           header: tuple[str, ...], rows: list[tuple[str, ...]], cols: list[float],
           row_mm: float, ruled: str = "all") -> float:
    xs = [x0 + (x1 - x0) * v for v in cols]
    rh = c.px(row_mm)
    allrows = [header] + rows
    pad = c.px(1.2)
    for r, row in enumerate(allrows):
        yy = y + r * rh + (rh - c.px(size * 1.15)) / 2
        for k, cell in enumerate(row):
            c.text(xs[k] + pad, yy, cell, size, "table")
    n = len(allrows)
    for r in range(n + 1):
        if ruled == "all" or r in (0, 1, n):
            c.rule(xs[0], y + r * rh, xs[-1], y + r * rh, 0.2 if 0 < r < n else 0.4)
    if ruled == "all":
        for x in xs:
            c.rule(x, y, x, y + n * rh)
    return y + n * rh


def _layout(c: _Canvas, rng, layout: str, part: str) -> None:
    pool = _phrases(part)
    size = float(rng.uniform(3.4, 4.4))  # body text height in mm (10-12.5 pt)
    m = c.px(rng.uniform(16, 24))
    left, right, top = m, c.W - c.px(rng.uniform(15, 22)), c.px(rng.uniform(14, 22))
    bottom = c.H - c.px(20)
    hand = HAND_FONT[part]
    if layout in ("prose", "stamp"):
        y = _header(c, rng, top, size, left, right)
        y = _paragraphs(c, rng, pool, left, right, y, bottom - c.px(35), size,
                        rng.uniform(1.5, 1.9), int(rng.integers(3, 6)))
        _signature(c, rng, c.W * 0.58, max(y + c.px(8), bottom - c.px(25)), size, hand)
        if layout == "stamp":
            for _ in range(int(rng.integers(2, 4))):
                _seal(c, rng, rng.uniform(0.25, 0.75) * c.W, rng.uniform(0.25, 0.8) * c.H,
                      rng.uniform(36, 44), _HOSPITALS[rng.integers(len(_HOSPITALS))])
    elif layout == "two_column":
        y = _header(c, rng, top, size * 0.95, left, right)
        gap = c.px(rng.uniform(6, 12))
        mid = (left + right) / 2
        spacing = rng.uniform(1.45, 1.8)
        _paragraphs(c, rng, pool, left, mid - gap / 2, y, bottom, size * 0.95, spacing, 9)
        _paragraphs(c, rng, pool, mid + gap / 2, right, y, bottom, size * 0.95, spacing, 9)
    elif layout == "lab_table":
        y = _header(c, rng, top, size, left, right)
        n = int(rng.integers(12, 22))
        rows = [_LAB[i] + (("↑" if rng.random() < 0.3 else ""),)
                for i in rng.choice(len(_LAB), size=n, replace=False)]
        rows = [(r[0], r[1], r[4], r[2], r[3]) for r in rows]
        y = _table(c, rng, left, right, y + c.px(3), size * 0.95,
                   ("项目名称", "结果", "提示", "单位", "参考区间"), rows,
                   [0, 0.34, 0.5, 0.6, 0.78, 1.0], rng.uniform(6.5, 8.5),
                   "all" if rng.random() < 0.6 else "frame")
        c.text(left, y + c.px(6), f"检验者：{_name(rng)}    审核者：{_name(rng)}", size)
    elif layout == "form":
        hosp = _HOSPITALS[rng.integers(len(_HOSPITALS))]
        c.centered(top, hosp, size * 1.6)
        y = top + c.px(size * 1.6 * 1.5)
        c.centered(y, "住院病案首页", size * 1.4)
        y += c.px(size * 2.6)
        labels = ("姓名", "性别", "出生日期", "年龄", "国籍", "民族", "职业", "婚姻", "籍贯",
                  "身份证号", "现住址", "电话", "入院途径", "入院科别", "出院科别", "实际住院",
                  "门诊诊断", "出院诊断", "手术名称", "麻醉方式", "切口愈合", "离院方式",
                  "科主任", "主任医师", "主治医师", "住院医师", "责任护士", "编码员")
        cols = int(rng.integers(2, 4))
        cw = (right - left) / cols
        rh = c.px(rng.uniform(9, 12))
        vals = lambda: (_name(rng) if rng.random() < 0.3 else  # noqa: E731
                        str(rng.integers(1, 10**int(rng.integers(2, 7)))) if rng.random() < 0.5
                        else _DEPTS[rng.integers(len(_DEPTS))])
        for i, lab in enumerate(labels):
            r, k = divmod(i, cols)
            yy = y + r * rh
            if yy + rh > bottom:
                break
            xx = left + k * cw
            c.d.rectangle([xx, yy, xx + cw, yy + rh], outline=c.ink, width=max(1, c.px(0.2)))
            ty = yy + (rh - c.px(size * 1.15)) / 2
            e = c.text(xx + c.px(1.5), ty, f"{lab}：", size, "table")
            if rng.random() < 0.8:
                c.text(e + c.px(1), ty, vals(), size, "table")
    elif layout == "landscape":
        y = _header(c, rng, top, size, left, right)
        n = int(rng.integers(8, 16))
        rows = []
        for _ in range(n):
            rows.append((f"{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d}",
                         f"{rng.integers(0, 24):02d}:{rng.integers(0, 60):02d}",
                         _ORDERS[rng.integers(len(_ORDERS))], _name(rng), _name(rng)))
        _table(c, rng, left, right, y + c.px(3), size, ("日期", "时间", "医嘱内容", "医师签名",
                                                          "护士签名"),
               rows, [0, 0.1, 0.2, 0.72, 0.86, 1.0], rng.uniform(7.5, 9), "all")
    elif layout == "sparse":
        y = _header(c, rng, top, size, left, right)
        y = _paragraphs(c, rng, pool, left, right, y + c.px(4), bottom, size, 1.7, 1)
        _signature(c, rng, c.W * 0.55, y + c.px(20), size, hand)
    elif layout == "handwriting":
        y = _header(c, rng, top, size, left, right)
        blue = (25, 40, 120)
        lh = c.px(size * rng.uniform(2.2, 2.8))
        for _ in range(int(rng.integers(6, 12))):
            s = pool[rng.integers(len(pool))]
            s = s[: int(rng.integers(8, min(len(s), 22) + 1))]
            if y + lh > bottom - c.px(30):
                break
            _hand_line(c, rng, left + c.px(rng.uniform(0, 8)), y, s, size * 1.25, hand, blue)
            y += lh
        _signature(c, rng, c.W * 0.55, bottom - c.px(25), size, hand)
    else:
        raise ValueError(f"unknown layout {layout!r}")
    # page number at the foot
    c.centered(c.H - c.px(12), f"第{rng.integers(1, 30)}页", size * 0.85, "print")


def draw(seed: int, part: str, layout: str, paper: str = "A4", dpi: float = 300,
         font: str | None = None) -> tuple[np.ndarray, list[Line], str]:
    """The flat upright page (BGR), its text lines and the font family used."""
    rng = np.random.default_rng([seed, PARTS.index(part), LAYOUTS.index(layout)])
    fonts = available_fonts(part)
    if not fonts:
        raise RuntimeError(f"no font of the {part} part is installed: {FONTS[part]}")
    fam = font or fonts[int(rng.integers(len(fonts)))]
    w, h = PAPERS_MM[paper]
    if layout == "landscape":
        w, h = h, w
    c = _Canvas(w, h, dpi, (fam,), rng)
    _layout(c, rng, layout, part)
    return c.array(), c.lines, fam


# ------------------------------------------------------------------------------- captures


def _field(rng, h: int, w: int, cells: int) -> np.ndarray:
    small = rng.uniform(0, 1, (cells, max(2, int(round(cells * w / h))))).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 1)


def _rotate_keep(img: np.ndarray, angle: float, fill) -> tuple[np.ndarray, np.ndarray]:
    h, w = img.shape[:2]
    M = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    out = cv2.warpAffine(img, M, (w, h), flags=cv2.INTER_LINEAR, borderValue=fill)
    return out, np.vstack([M, [0, 0, 1]])


def _turn(img: np.ndarray, turn: int) -> np.ndarray:
    return np.ascontiguousarray(np.rot90(img, (turn // 90) % 4))


def _copy_once(rng, img: np.ndarray) -> tuple[np.ndarray, float]:
    """One pass through a copier: grey, harder tone curve, blur, mottle, streak, specks, a
    small shift and skew of the original on the glass."""
    g = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
    h, w = g.shape
    ang = float(rng.uniform(-1.2, 1.2))
    M = cv2.getRotationMatrix2D((w / 2, h / 2), ang, 1.0)
    M[:, 2] += rng.uniform(-0.01, 0.01, 2) * (w, h)
    g = cv2.warpAffine(g, M, (w, h), flags=cv2.INTER_LINEAR, borderValue=255)
    lo, hi = rng.uniform(15, 45), rng.uniform(215, 240)
    g = lo + (g / 255.0) ** rng.uniform(1.2, 1.7) * (hi - lo)
    g += (_field(rng, h, w, 7) - 0.5) * rng.uniform(8, 20)
    if rng.random() < 0.6:  # a streak down the page (dirty drum)
        x = int(rng.integers(0, w))
        g[:, max(0, x - 2):x + 2] -= rng.uniform(20, 60)
    g = cv2.GaussianBlur(g, (0, 0), rng.uniform(0.5, 0.9))
    n = int(h * w / 4000)
    ys, xs = rng.integers(0, h, n), rng.integers(0, w, n)
    g[ys, xs] = rng.uniform(30, 120, n)
    g += rng.normal(0, 3, g.shape).astype(np.float32)
    return cv2.cvtColor(np.clip(g, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR), ang


def _curl_maps(rng, W: int, H: int, dpi: float, depth_mm: float, width_mm: float,
               cam_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Maps (for cv2.remap) from the picture of a page curled up at its left edge (the
    binding), seen from above by a camera ``cam_mm`` over the page's centre, to the flat
    page. The page rises as z(u) = depth * exp(-u / width); a point at height z appears
    magnified about the centre by cam / (cam - z); its arc is foreshortened along x."""
    step = 8
    gx = np.arange(0, W + step, step, np.float32)
    gy = np.arange(0, H + step, step, np.float32)
    px = dpi / 25.4
    cx, cy = W / 2, H / 2
    # forward: flat u -> seen x (1-D in u); seen y = cy + (v - cy) * m(u)
    u = np.linspace(0, W, 2048, dtype=np.float64)
    z = depth_mm * np.exp(-(u / px) / width_mm)
    dz = np.gradient(z, u / px)
    # arc length to horizontal distance: dx = du * cos(slope)
    xflat = np.concatenate(([0.0], np.cumsum(np.diff(u) / np.sqrt(1 + dz[1:] ** 2))))
    xflat += u[-1] - xflat[-1]  # the far edge stays where it was (the book holds it)
    m = cam_mm / (cam_mm - z)
    xseen = cx + (xflat - cx) * m
    # invert x: for each seen x find u
    u_of_x = np.interp(gx, xseen, u)
    m_of_x = np.interp(u_of_x, u, m)
    map_x = np.repeat(u_of_x[None, :], len(gy), 0).astype(np.float32)
    map_y = (cy + (gy[:, None] - cy) / m_of_x[None, :]).astype(np.float32)
    map_x = cv2.resize(map_x, (W, H), interpolation=cv2.INTER_LINEAR)
    map_y = cv2.resize(map_y, (W, H), interpolation=cv2.INTER_LINEAR)
    return map_x, map_y


def _phone(rng, flat: np.ndarray, dpi: float, turn: int, curl: float, glare: bool,
           res: float = 1.0) -> tuple[np.ndarray, float, list, dict]:
    """A 12 MP phone photo of the flat page (``res`` < 1: a smaller frame, for tests)."""
    page = flat
    H, W = page.shape[:2]
    extra: dict = {}
    if curl > 0:
        width = float(rng.uniform(30, 60))
        mx, my = _curl_maps(rng, W, H, dpi, curl, width, float(rng.uniform(380, 480)))
        page = cv2.remap(page, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=(255, 255, 255))
        # the rising paper near the binding is darker (it turns away from the light)
        shade = 1 - 0.35 * np.exp(-(np.arange(W) / (dpi / 25.4)) / (width * 0.7))
        page = (page.astype(np.float32) * shade[None, :, None].astype(np.float32)).astype(
            np.uint8)
        extra["curl_width_mm"] = width
    page = _turn(page, turn)
    H, W = page.shape[:2]
    portrait = H >= W
    FW, FH = (3000, 4000) if portrait else (4000, 3000)
    FW, FH = int(FW * res), int(FH * res)
    cover = rng.uniform(0.72, 0.88)
    s = min(FW * cover / W, FH * cover / H)
    sw, sh = W * s, H * s
    cx = FW / 2 + rng.uniform(-0.04, 0.04) * FW
    cy = FH / 2 + rng.uniform(-0.04, 0.04) * FH
    rot = math.radians(rng.uniform(-6, 6))
    tilt = rng.uniform(0.03, 0.09)
    side = int(rng.integers(4))  # which edge is farther from the camera
    corners = []
    for k, (ux, uy) in enumerate(((-1, -1), (1, -1), (1, 1), (-1, 1))):
        x, y = ux * sw / 2, uy * sh / 2
        far = {0: uy < 0, 1: ux > 0, 2: uy > 0, 3: ux < 0}[side]
        if far:
            if side in (0, 2):
                x *= 1 - tilt
            else:
                y *= 1 - tilt
        x, y = x * math.cos(rot) - y * math.sin(rot), x * math.sin(rot) + y * math.cos(rot)
        corners.append((cx + x + rng.uniform(-0.01, 0.01) * FW,
                        cy + y + rng.uniform(-0.01, 0.01) * FH))
    src = np.float32([[0, 0], [W, 0], [W, H], [0, H]])
    Hm = cv2.getPerspectiveTransform(src, np.float32(corners))
    photo = cv2.warpPerspective(page, Hm, (FW, FH), flags=cv2.INTER_AREA
                                if s < 1 else cv2.INTER_LINEAR).astype(np.float32)
    cover_m = cv2.warpPerspective(np.full((H, W), 255, np.uint8), Hm, (FW, FH),
                                  flags=cv2.INTER_LINEAR).astype(np.float32)[..., None] / 255
    desk = np.array(rng.choice([[95, 120, 150], [50, 50, 55], [120, 95, 70], [30, 70, 40]]),
                    np.float32) * (0.75 + 0.5 * _field(rng, FH, FW, 10))[..., None]
    img = photo * cover_m + desk * (1 - cover_m)
    light = 0.8 + 0.22 * _field(rng, FH, FW, 3)
    if rng.random() < 0.7:  # the photographer's shadow
        yy, xx = np.mgrid[0:FH:8, 0:FW:8].astype(np.float32)
        sx, sy = rng.uniform(0, 1) * FW, rng.uniform(0.6, 1.2) * FH
        sh_ = np.exp(-(((xx - sx) / (0.3 * FW)) ** 2 + ((yy - sy) / (0.25 * FH)) ** 2))
        light *= 1 - rng.uniform(0.15, 0.35) * cv2.resize(sh_, (FW, FH))
    tint = np.array(rng.choice([[0.92, 0.97, 1.0], [1.0, 0.98, 0.95], [0.97, 1.0, 0.98]]),
                    np.float32)
    img = img * light[..., None] * tint
    boxes = []
    if glare:
        # a lamp's reflection: a saturated core with a soft halo, on the paper
        for _ in range(int(rng.integers(1, 3))):
            for _try in range(20):
                gx_, gy_ = rng.uniform(0.25, 0.75) * FW, rng.uniform(0.25, 0.75) * FH
                if cv2.pointPolygonTest(np.float32(corners).reshape(-1, 1, 2),
                                        (float(gx_), float(gy_)), False) > 0:
                    break
            rx, ry = rng.uniform(0.04, 0.09) * FW, rng.uniform(0.03, 0.07) * FH
            yy, xx = np.mgrid[0:FH:4, 0:FW:4].astype(np.float32)
            d2 = ((xx - gx_) / rx) ** 2 + ((yy - gy_) / ry) ** 2
            a = np.clip(1.6 * np.exp(-d2 ** 1.5 * 0.9), 0, 1)
            a = cv2.resize(a, (FW, FH), interpolation=cv2.INTER_LINEAR)[..., None]
            img = img * (1 - a) + 262 * a
            core = a[..., 0] >= 0.97
            ys, xs = np.nonzero(core[::4, ::4])
            if len(xs):
                boxes.append((int(xs.min() * 4), int(ys.min() * 4), int(xs.max() * 4 + 4),
                              int(ys.max() * 4 + 4)))
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.7, 1.2))
    img += rng.normal(0, rng.uniform(2.5, 5), img.shape[:2]).astype(np.float32)[..., None]
    img = np.clip(img, 0, 255).astype(np.uint8)
    # the sheet's paper resolution (its short side)
    eff = s * dpi * (1 - tilt / 2)
    extra["sheet_quad"] = [list(map(float, c)) for c in corners]
    return img, float(eff), boxes, extra


def make(seed: int, part: str, layout: str | None = None, capture: str | None = None,
         turn: int | None = None, paper: str | None = None, scan_dpi: float | None = None,
         res: float = 1.0) -> CorpusPage:
    """One corpus page. Unset choices are drawn from the seed. ``res`` scales every
    resolution (0.5: pages at half the DPI and 3 MP photos, for quick tests)."""
    if part not in PARTS:
        raise ValueError(f"unknown part {part!r}")
    rng = np.random.default_rng([seed, 7 + PARTS.index(part)])
    layout = layout or LAYOUTS[int(rng.integers(len(LAYOUTS)))]
    capture = capture or CAPTURES[int(rng.integers(len(CAPTURES)))]
    if turn is None:
        turn = int(rng.choice([0, 0, 90, 180, 270]))
    phone = capture.startswith("phone")
    if paper is None:
        paper = str(rng.choice(list(PAPERS_MM))) if phone and rng.random() < 0.5 else "A4"
    q = int(rng.integers(60, 96))
    if capture == "scan":
        dpi = float(scan_dpi or rng.choice([200, 300, 300, 400, 600])) * res
    else:
        dpi = 300.0 * res
    flat, lines, fam = draw(seed, part, layout, paper, dpi)
    glare_boxes: list = []
    curl = 0.0
    skew_ = 0.0
    extra: dict = {}
    if capture == "scan":
        skew_ = float(rng.uniform(-4, 4))
        tint = rng.uniform(232, 252, 3).astype(np.float32)
        img, _ = _rotate_keep(flat, skew_, (255, 255, 255))
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.4, 0.9) * dpi / 300)
        img = img.astype(np.float32) * (tint / 255.0)
        img += rng.normal(0, rng.uniform(1.5, 4), img.shape[:2]).astype(np.float32)[..., None]
        img = _turn(np.clip(img, 0, 255).astype(np.uint8), turn)
        eff = dpi
    elif capture == "copy2":
        img, a1 = _copy_once(rng, flat)
        img, a2 = _copy_once(rng, img)
        skew_ = a1 + a2
        img = _turn(img, turn)
        eff = dpi
    else:
        if capture == "phone_curl":
            curl = float(rng.uniform(12, 25))
        img, eff, glare_boxes, extra = _phone(rng, flat, dpi, turn, curl,
                                              capture == "phone_glare", res)
    return CorpusPage(seed=seed, part=part, layout=layout, capture=capture, font=fam,
                      paper=paper, dpi=dpi, flat=flat, image=img, turn=turn, lines=lines,
                      effective_dpi=float(eff), jpeg_quality=q, glare=glare_boxes,
                      curl_mm=curl, skew=skew_, extra=extra)


def plan(part: str, n: int, start: int = 0) -> list[dict]:
    """``n`` page choices covering every layout x capture pairing in turn, with all four
    turns: the benches and tests draw the same pages from it."""
    out = []
    for i in range(start, start + n):
        out.append({"seed": 1000 * (1 + PARTS.index(part)) + i, "part": part,
                    "layout": LAYOUTS[i % len(LAYOUTS)],
                    "capture": CAPTURES[(i // len(LAYOUTS) + i) % len(CAPTURES)],
                    "turn": (0, 90, 180, 270)[(i * 3 + i // 4) % 4]})
    return out


def cached(spec: dict, cache_dir, res: float = 1.0) -> tuple[bytes, dict]:
    """(capture JPEG, truth) of ``make(**spec, res=res)``, kept in ``cache_dir`` (benches
    draw the same pages run after run; drawing a phone photo takes seconds)."""
    import json
    from pathlib import Path

    d = Path(cache_dir)
    d.mkdir(parents=True, exist_ok=True)
    key = "{part}-{seed}-{layout}-{capture}-{turn}".format(**spec) + f"-{res:g}-v2"
    jpg, meta = d / f"{key}.jpg", d / f"{key}.json"
    if jpg.exists() and meta.exists():
        return jpg.read_bytes(), json.loads(meta.read_text("utf-8"))
    p = make(**spec, res=res)
    data = p.jpeg()
    truth = {"seed": p.seed, "part": p.part, "layout": p.layout, "capture": p.capture,
             "source": p.source, "font": p.font, "paper": p.paper, "dpi": p.dpi,
             "turn": p.turn, "effective_dpi": p.effective_dpi, "skew": p.skew,
             "jpeg_quality": p.jpeg_quality, "glare": [list(b) for b in p.glare],
             "curl_mm": p.curl_mm, "size": [p.flat.shape[1], p.flat.shape[0]],
             "lines": [[ln.text, list(ln.box), ln.kind] for ln in p.lines]}
    tmp = jpg.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(jpg)
    meta.write_text(json.dumps(truth, ensure_ascii=False), "utf-8")
    return data, truth

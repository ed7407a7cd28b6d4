"""Seeded synthetic record pages with known truth, for the tests and bench/imaging.py.

A page is drawn straight ("ideal" coordinates: A4 at ``dpi``) with Pillow and a Debian CJK font:
a hospital title, a header line, medical-record Chinese in paragraphs, a ruled lab table,
handwriting-like bezier strokes (a signature and a margin note in blue ink) and a red circular
seal with text around it. A capture style is then applied and the truth returned with it:

- ``scanner``: the sheet lies skewed on the glass; slight optical blur, paper tint and noise.
- ``camera`` (phone photo): the sheet is photographed in perspective on a desk (background
  around it), under uneven light with a soft shadow; the sheet covers only part of a 12 MP
  frame, so the effective DPI is below 300; the text itself may sit slightly crooked on the
  sheet.
- ``photocopy``: an original whose print is crooked on its paper was copied lying skewed on the
  glass with the lid open: grey, darker, toner speckle, and a dark area outside the original
  whose edge runs at another angle than the text (deskew must follow the text).

Truth: ``angle`` is the skew of the text lines in the returned image (degrees, counter-clockwise
positive, as ``cv2.getRotationMatrix2D`` counts), ``page_to_image`` the 3x3 map from ideal
coordinates to image coordinates, ``content_box`` the ink's box in ideal coordinates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from bingan.core import fonts

A4_MM = (210.0, 297.0)
STYLES = ("scanner", "camera", "photocopy")

HOSPITALS = ("示例市第一人民医院", "示例市中心医院", "示例省人民医院")
TITLES = ("出院记录", "入院记录", "首次病程记录", "手术记录", "日常病程记录", "会诊记录")
DEPARTMENTS = ("心血管内科", "呼吸内科", "普通外科", "骨科", "神经内科", "消化内科")
SENTENCES = (
    "患者因反复胸闷、气促3年，加重1周入院。",
    "患者于3年前无明显诱因出现活动后胸闷，休息后可缓解，未予重视。",
    "1周前上述症状加重，伴夜间阵发性呼吸困难，不能平卧，遂来我院就诊。",
    "门诊以“冠状动脉粥样硬化性心脏病”收入我科。",
    "入院查体：体温36.5℃，脉搏88次/分，呼吸20次/分，血压135/85mmHg。",
    "神志清楚，精神尚可，口唇无发绀，颈静脉无怒张。",
    "双肺呼吸音粗，双下肺可闻及少许湿性啰音，未闻及胸膜摩擦音。",
    "心率88次/分，律齐，各瓣膜听诊区未闻及病理性杂音。",
    "腹软，无压痛及反跳痛，肝脾肋下未触及，双下肢轻度凹陷性水肿。",
    "辅助检查：心电图示窦性心律，ST-T改变；心脏彩超示左室舒张功能减退，射血分数52%。",
    "入院后予抗血小板聚集、调脂稳定斑块、扩张冠状动脉及利尿等对症支持治疗。",
    "完善冠状动脉造影检查，提示前降支近段狭窄约80%，于前降支植入支架1枚。",
    "术后患者胸闷症状明显缓解，穿刺部位无渗血，足背动脉搏动良好。",
    "复查血常规、肝肾功能及电解质未见明显异常，病情稳定，准予出院。",
    "出院诊断：1.冠状动脉粥样硬化性心脏病 不稳定型心绞痛；2.高血压病2级（很高危）。",
    "出院医嘱：低盐低脂饮食，注意休息，避免劳累及情绪激动。",
    "继续口服阿司匹林肠溶片100mg每日一次，氯吡格雷75mg每日一次，阿托伐他汀钙片20mg每晚一次。",
    "出院后1个月心内科门诊复查，如有胸痛、胸闷加重等不适随时就诊。",
    "既往有高血压病史10年，最高血压170/100mmHg，规律服用硝苯地平控释片，血压控制可。",
    "否认糖尿病史，否认肝炎、结核等传染病史，否认手术、外伤及输血史，否认药物及食物过敏史。",
    "个人史：生于原籍，无疫区居住史，吸烟20年，每日约10支，已戒烟2年，偶饮酒。",
    "家族史：父亲患有高血压病，母亲体健，否认家族遗传性疾病史。",
)
LAB_ROWS = (
    ("白细胞计数", "6.52", "10^9/L", "3.5-9.5"),
    ("中性粒细胞百分比", "68.3", "%", "40-75"),
    ("血红蛋白", "128", "g/L", "130-175"),
    ("血小板计数", "215", "10^9/L", "125-350"),
    ("谷丙转氨酶", "32", "U/L", "9-50"),
    ("肌酐", "86", "μmol/L", "57-111"),
    ("钾", "4.12", "mmol/L", "3.5-5.3"),
    ("肌钙蛋白I", "0.03", "ng/mL", "<0.04"),
)


def _font(size: int) -> ImageFont.FreeTypeFont:
    return fonts.truetype(size)  # any installed font that draws Chinese (core.fonts)


@dataclass
class SynthPage:
    """A generated capture and its truth."""

    image: np.ndarray  # BGR uint8
    style: str
    angle: float  # skew of the text lines in ``image``, degrees, counter-clockwise positive
    orientation: int  # the page was turned this many degrees counter-clockwise (0/90/180/270)
    page_to_image: np.ndarray  # 3x3: ideal page coordinates -> image coordinates
    content_box: tuple[int, int, int, int]  # ink box in ideal page coordinates
    page_size: tuple[int, int]  # ideal page (width, height) in pixels
    dpi: float  # resolution of the ideal page
    effective_dpi: float  # paper resolution in ``image`` (camera: below ``dpi``)
    content: str = "dense"
    extra: dict = field(default_factory=dict)

    def jpeg(self, quality: int = 90) -> bytes:
        from bingan_imaging.codec import encode_jpeg

        dpi = None if self.style == "camera" else self.effective_dpi
        return encode_jpeg(self.image, quality, dpi)


def _mm(dpi: float, mm: float) -> int:
    return int(round(mm / 25.4 * dpi))


def _wrap(text: str, font: ImageFont.FreeTypeFont, width: int, indent: int) -> list[str]:
    lines, cur, first = [], "", True
    for ch in text:
        limit = width - (indent if first else 0)
        if font.getlength(cur + ch) > limit and cur:
            if ch in "，。、；：）”％%":  # no line may start with closing punctuation
                cur, ch = cur[:-1], cur[-1] + ch
            lines.append(cur)
            cur, first = ch, False
        else:
            cur += ch
    if cur:
        lines.append(cur)
    return lines


def _bezier_strokes(rng: np.random.Generator, x0: float, y0: float, w: float, h: float,
                    n: int) -> list[np.ndarray]:
    """Handwriting-like strokes: ``n`` cursive "characters" of a few cubic bezier pieces each,
    written left to right in a box of height ``h`` (a signature, a note in the margin)."""
    strokes = []
    cw = h * 0.85
    x = x0
    for _ in range(n):
        if x + cw > x0 + w:
            break
        for _ in range(int(rng.integers(1, 3))):  # one or two pen-downs per character
            pts = [(x + rng.uniform(0, 0.4) * cw, y0 + rng.uniform(0.1, 0.9) * h)]
            for _ in range(int(rng.integers(2, 5))):
                pts.append((x + rng.uniform(0, 1) * cw, y0 + rng.uniform(0, 1) * h))
            curve = []
            for (ax, ay), (bx, by) in zip(pts, pts[1:]):
                c1 = (ax + rng.uniform(-0.5, 0.5) * cw, ay + rng.uniform(-0.5, 0.5) * h)
                c2 = (bx + rng.uniform(-0.5, 0.5) * cw, by + rng.uniform(-0.5, 0.5) * h)
                for t in np.linspace(0, 1, 16):
                    u = 1 - t
                    curve.append((u**3 * ax + 3 * u * u * t * c1[0] + 3 * u * t * t * c2[0]
                                  + t**3 * bx,
                                  u**3 * ay + 3 * u * u * t * c1[1] + 3 * u * t * t * c2[1]
                                  + t**3 * by))
            strokes.append(np.array(curve, np.float64))
        x += cw * rng.uniform(0.9, 1.2)
    return strokes


def _draw_strokes(page: np.ndarray, strokes: list[np.ndarray], colour: tuple[int, int, int],
                  width: int) -> None:
    shift = 4
    for s in strokes:
        pts = np.round(s * (1 << shift)).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(page, [pts], False, colour, width, cv2.LINE_AA, shift)


def _seal_mask(rng: np.random.Generator, diameter: int, ring_text: str,
               centre_text: str) -> np.ndarray:
    """A circular seal as an ink mask 0..1 (ring, text around it, star, text below)."""
    size = diameter + 8
    img = Image.new("L", (size, size), 0)
    d = ImageDraw.Draw(img)
    c = size / 2
    r = diameter / 2
    ring = max(3, int(diameter * 0.035))
    d.ellipse([c - r, c - r, c + r, c + r], outline=255, width=ring)
    # text around the upper arc, each character turned to face the centre
    fs = max(8, int(diameter * 0.13))
    font = _font(fs)
    n = len(ring_text)
    span = math.radians(230)
    for i, ch in enumerate(ring_text):
        a = -math.pi / 2 - span / 2 + span * (i + 0.5) / n
        gi = Image.new("L", (fs + 6, fs + 6), 0)
        ImageDraw.Draw(gi).text((3, 0), ch, fill=255, font=font)
        gi = gi.rotate(-math.degrees(a) - 90, resample=Image.Resampling.BICUBIC, expand=True)
        rr = r - ring - fs * 0.65
        x, y = c + rr * math.cos(a) - gi.width / 2, c + rr * math.sin(a) - gi.height / 2
        img.paste(255, (int(x), int(y)), gi)
    # five-pointed star
    rs = r * 0.28
    star = []
    for k in range(10):
        a = -math.pi / 2 + k * math.pi / 5
        rad = rs if k % 2 == 0 else rs * 0.4
        star.append((c + rad * math.cos(a), c + rad * math.sin(a)))
    d.polygon(star, fill=255)
    f2 = _font(max(8, int(diameter * 0.1)))
    w = f2.getlength(centre_text)
    d.text((c - w / 2, c + r * 0.38), centre_text, fill=255, font=f2)
    mask = np.asarray(img, np.float32) / 255.0
    # uneven ink: some pressure variation and a few gaps
    blot = cv2.GaussianBlur(rng.uniform(0.55, 1.0, (size, size)).astype(np.float32), (0, 0),
                            diameter * 0.03)
    return np.clip(mask * (0.45 + blot * 0.7), 0, 1)


def _apply_seal(page: np.ndarray, mask: np.ndarray, cx: int, cy: int,
                colour_bgr: tuple[int, int, int]) -> None:
    h, w = mask.shape
    x0, y0 = cx - w // 2, cy - h // 2
    x1, y1 = min(page.shape[1], x0 + w), min(page.shape[0], y0 + h)
    x0c, y0c = max(0, x0), max(0, y0)
    m = mask[y0c - y0:y1 - y0, x0c - x0:x1 - x0, None]
    region = page[y0c:y1, x0c:x1].astype(np.float32)
    ink = np.array(colour_bgr, np.float32) / 255.0
    page[y0c:y1, x0c:x1] = np.clip(region * (1 - m + m * ink), 0, 255).astype(np.uint8)


def draw_page(rng: np.random.Generator, dpi: float = 300, content: str = "dense") -> np.ndarray:
    """The straight page (BGR, white paper) at ``dpi``. content: dense, sparse, stamp, blank."""
    W, H = _mm(dpi, A4_MM[0]), _mm(dpi, A4_MM[1])
    img = Image.new("RGB", (W, H), (255, 255, 255))
    if content in ("blank", "stamp"):
        page = np.asarray(img)[:, :, ::-1].copy()
        if content == "stamp":
            mask = _seal_mask(rng, _mm(dpi, 24), "示例市第一人民医院", "已归档")
            _apply_seal(page, mask, int(W * rng.uniform(0.55, 0.75)),
                        int(H * rng.uniform(0.7, 0.85)), (45, 40, 215))
        return page
    d = ImageDraw.Draw(img)
    ink = (25, 25, 25)
    left, right, top = _mm(dpi, 22), W - _mm(dpi, 20), _mm(dpi, 20)
    title_f, head_f, body_f = _font(_mm(dpi, 7.0)), _font(_mm(dpi, 5.2)), _font(_mm(dpi, 3.9))
    hosp = HOSPITALS[rng.integers(len(HOSPITALS))]
    title = TITLES[rng.integers(len(TITLES))]
    y = top
    w = title_f.getlength(hosp)
    d.text(((W - w) / 2, y), hosp, fill=ink, font=title_f)
    y += int(_mm(dpi, 7.0) * 1.5)
    w = head_f.getlength(title)
    d.text(((W - w) / 2, y), title, fill=ink, font=head_f)
    y += int(_mm(dpi, 5.2) * 1.8)
    mrn = f"{rng.integers(10**6, 10**7)}"
    header = (f"姓名：张某某  性别：男  年龄：{rng.integers(30, 85)}岁  "
              f"科室：{DEPARTMENTS[rng.integers(len(DEPARTMENTS))]}  床号：{rng.integers(1, 60)}  "
              f"病案号：{mrn}")
    d.text((left, y), header, fill=ink, font=body_f)
    y += int(_mm(dpi, 3.9) * 1.6)
    d.line([(left, y), (right, y)], fill=ink, width=max(2, _mm(dpi, 0.4)))
    y += _mm(dpi, 4)
    line_h = int(_mm(dpi, 3.9) * 1.75)
    indent = int(body_f.getlength("　　"))
    n_par = int(rng.integers(4, 7)) if content == "dense" else 1
    order = rng.permutation(len(SENTENCES))
    k = 0
    bottom_text = H - _mm(dpi, 90)
    for p in range(n_par):
        n_sent = int(rng.integers(3, 6)) if content == "dense" else 2
        text = "".join(SENTENCES[order[(k + i) % len(order)]] for i in range(n_sent))
        k += n_sent
        for i, line in enumerate(_wrap(text, body_f, right - left, indent)):
            if y > bottom_text:
                break
            d.text((left + (indent if i == 0 else 0), y), line, fill=ink, font=body_f)
            y += line_h
        y += line_h // 3
        if content == "dense" and p == 1:
            y = _draw_table(d, rng, left, right, y + _mm(dpi, 2), dpi, body_f, ink) + _mm(dpi, 4)
    page = np.asarray(img)[:, :, ::-1].copy()
    # signature line and handwriting (blue ballpoint), a margin note
    sy = max(y + _mm(dpi, 10), H - _mm(dpi, 70)) if content == "dense" else y + _mm(dpi, 25)
    sig_label = "医师签名："
    pil = Image.fromarray(page[:, :, ::-1].copy())
    ImageDraw.Draw(pil).text((int(W * 0.55), sy), sig_label, fill=ink, font=body_f)
    page = np.asarray(pil)[:, :, ::-1].copy()
    sx = int(W * 0.55 + body_f.getlength(sig_label) + _mm(dpi, 2))
    blue = (140, 45, 30)
    pen = max(2, _mm(dpi, 0.45))
    _draw_strokes(page, _bezier_strokes(rng, sx, sy - _mm(dpi, 2), _mm(dpi, 40), _mm(dpi, 9),
                                        3), blue, pen)
    if content == "dense":
        _draw_strokes(page, _bezier_strokes(rng, left + _mm(dpi, 5), sy + _mm(dpi, 14),
                                            _mm(dpi, 70), _mm(dpi, 6), 9), blue, pen)
    # red seal over the signature area
    mask = _seal_mask(rng, _mm(dpi, 40), hosp, "病案专用章")
    _apply_seal(page, mask, int(W * rng.uniform(0.62, 0.72)),
                int(sy + _mm(dpi, rng.uniform(2, 10))), (45, 40, 215))
    # footer
    pil = Image.fromarray(page[:, :, ::-1].copy())
    foot = f"第 {rng.integers(1, 9)} 页"
    fw = body_f.getlength(foot)
    ImageDraw.Draw(pil).text(((W - fw) / 2, H - _mm(dpi, 18)), foot, fill=ink, font=body_f)
    return np.asarray(pil)[:, :, ::-1].copy()


def _draw_table(d: ImageDraw.ImageDraw, rng: np.random.Generator, left: int, right: int,
                y: int, dpi: float, font, ink) -> int:
    cols = [0.0, 0.36, 0.56, 0.74, 1.0]
    xs = [int(left + c * (right - left)) for c in cols]
    row_h = _mm(dpi, 7)
    rows = [("检验项目", "结果", "单位", "参考范围")] + list(LAB_ROWS[: int(rng.integers(5, 9))])
    lw = max(2, _mm(dpi, 0.3))
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            d.text((xs[c] + _mm(dpi, 2), y + r * row_h + _mm(dpi, 1.2)), cell, fill=ink,
                   font=font)
    for r in range(len(rows) + 1):
        d.line([(xs[0], y + r * row_h), (xs[-1], y + r * row_h)], fill=ink, width=lw)
    for x in xs:
        d.line([(x, y), (x, y + len(rows) * row_h)], fill=ink, width=lw)
    return y + len(rows) * row_h


def _ink_box(page: np.ndarray) -> tuple[int, int, int, int]:
    g = page.min(axis=2)
    ys, xs = np.nonzero(g < 200)
    if len(xs) == 0:
        return (0, 0, 0, 0)
    return (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)


def _rot(angle: float, cx: float, cy: float) -> np.ndarray:
    return np.vstack([cv2.getRotationMatrix2D((cx, cy), angle, 1.0), [0, 0, 1]])


def _noise(rng: np.random.Generator, img: np.ndarray, sigma: float) -> np.ndarray:
    n = rng.normal(0, sigma, img.shape[:2]).astype(np.float32)
    return np.clip(img.astype(np.float32) + n[..., None], 0, 255).astype(np.uint8)


def _smooth_field(rng: np.random.Generator, h: int, w: int, cells: int = 6) -> np.ndarray:
    """A smooth random field in 0..1 (bicubic-upsampled noise)."""
    small = rng.uniform(0, 1, (cells, max(2, int(cells * w / h)))).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 1)


def make_page(seed: int, style: str = "scanner", content: str = "dense",
              angle: float | None = None, orientation: int = 0, dpi: float = 300,
              max_angle: float = 15.0) -> SynthPage:
    """Generate one capture. ``angle`` None draws one at random in ±``max_angle``; for the camera
    style it is the text's skew on the sheet (the photo adds perspective on top)."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}")
    rng = np.random.default_rng(seed)
    ideal = draw_page(rng, dpi, content)
    H, W = ideal.shape[:2]
    box = _ink_box(ideal)
    if angle is None:
        angle = float(rng.uniform(-max_angle, max_angle)) if style != "camera" else \
            float(rng.uniform(-1.5, 1.5))
    extra: dict = {}
    if style == "scanner":
        M = _rot(angle, W / 2, H / 2)
        paper = np.array(rng.uniform(238, 248, 3), np.float32)
        img = cv2.warpAffine(ideal, M[:2], (W, H), flags=cv2.INTER_LINEAR,
                             borderValue=(255, 255, 255))
        img = cv2.GaussianBlur(img, (0, 0), 0.6)
        img = (img.astype(np.float32) * (paper / 255.0)).astype(np.uint8)
        img = _noise(rng, img, 2.5)
        eff = dpi
    elif style == "photocopy":
        # crooked print on the original, original crooked on the glass
        print_skew = float(rng.uniform(1.0, 3.0)) * (1 if rng.random() < 0.5 else -1)
        paper_angle = angle - print_skew
        shift = rng.uniform(-0.02, 0.02, 2) * (W, H)
        Mp = _rot(print_skew, W / 2, H / 2)
        Mg = _rot(paper_angle, W / 2, H / 2)
        Mg[:2, 2] += shift
        M = Mg @ Mp
        img = cv2.warpAffine(ideal, M[:2], (W, H), flags=cv2.INTER_LINEAR,
                             borderValue=(255, 255, 255))
        sheet = cv2.warpAffine(np.full((H, W), 255, np.uint8), Mg[:2], (W, H),
                               flags=cv2.INTER_LINEAR, borderValue=0)
        g = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
        # toner copy: darker, more contrast, grey paper with mottling
        g = 35 + (g / 255.0) ** 1.4 * (rng.uniform(195, 212) - 35)
        g += (_smooth_field(rng, H, W, 8) - 0.5) * 16
        lid = 70 + _smooth_field(rng, H, W, 5) * 50
        s = sheet.astype(np.float32) / 255.0
        g = g * s + lid * (1 - s)
        g = cv2.GaussianBlur(g, (0, 0), 0.8)
        g += rng.normal(0, 4, g.shape).astype(np.float32)
        # toner speckle: small dark dots, 0.1-0.4 mm across
        n_spk = int(A4_MM[0] * A4_MM[1] * 0.01)
        ys, xs = rng.integers(0, H, n_spk), rng.integers(0, W, n_spk)
        for yy, xx, rr in zip(ys, xs, rng.uniform(0.05, 0.2, n_spk)):
            r_px = max(0, int(round(rr / 25.4 * dpi)))
            cv2.circle(g, (int(xx), int(yy)), r_px, float(rng.uniform(40, 120)), -1)
        g = np.clip(g, 0, 255).astype(np.uint8)
        img = cv2.cvtColor(g, cv2.COLOR_GRAY2BGR)
        extra = {"paper_angle": paper_angle, "print_skew": print_skew}
        eff = dpi
    else:  # camera
        FW, FH = 3024, 4032
        sheet_w = FW * rng.uniform(0.70, 0.80)
        sheet_h = sheet_w * H / W
        if sheet_h > FH * 0.9:
            sheet_h = FH * 0.9
            sheet_w = sheet_h * W / H
        cx, cy = FW / 2 + rng.uniform(-0.04, 0.04) * FW, FH / 2 + rng.uniform(-0.03, 0.03) * FH
        rot = math.radians(rng.uniform(-5, 5))
        corners = []
        for ux, uy in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
            x, y = ux * sheet_w / 2, uy * sheet_h / 2
            x, y = x * math.cos(rot) - y * math.sin(rot), x * math.sin(rot) + y * math.cos(rot)
            # perspective: the far edge (top) looks narrower
            x *= 1 - 0.06 * (uy < 0) * rng.uniform(0.5, 1.0)
            corners.append((cx + x + rng.uniform(-0.015, 0.015) * FW,
                            cy + y + rng.uniform(-0.01, 0.01) * FH))
        src = np.float32([[0, 0], [W, 0], [W, H], [0, H]])
        Hs = cv2.getPerspectiveTransform(src, np.float32(corners)).astype(np.float64)
        Mt = _rot(angle, W / 2, H / 2)
        M = Hs @ Mt
        printed = cv2.warpAffine(ideal, Mt[:2], (W, H), flags=cv2.INTER_LINEAR,
                                 borderValue=(255, 255, 255))
        photo_sheet = cv2.warpPerspective(printed, Hs, (FW, FH), flags=cv2.INTER_LINEAR)
        cover = cv2.warpPerspective(np.full((H, W), 255, np.uint8), Hs, (FW, FH),
                                    flags=cv2.INTER_LINEAR).astype(np.float32)[..., None] / 255
        desk_col = np.array(rng.choice([[60, 85, 120], [70, 70, 75], [40, 60, 95]]), np.float32)
        tex = _smooth_field(rng, FH, FW, 12)[..., None]
        desk = desk_col * (0.7 + 0.6 * tex)
        img = photo_sheet.astype(np.float32) * cover + desk * (1 - cover)
        # light: gradient across the frame and a soft shadow (phone, hand)
        light = 0.78 + 0.25 * _smooth_field(rng, FH, FW, 3)
        yy, xx = np.mgrid[0:FH:8, 0:FW:8].astype(np.float32)
        sx, sy = rng.uniform(0.2, 0.8) * FW, rng.uniform(0.5, 1.1) * FH
        shadow = np.exp(-(((xx - sx) / (0.22 * FW)) ** 2 + ((yy - sy) / (0.3 * FH)) ** 2))
        shadow = cv2.resize(shadow, (FW, FH), interpolation=cv2.INTER_LINEAR)
        light = light * (1 - 0.35 * shadow)
        tint = np.array([0.93, 0.98, 1.0], np.float32)  # warm indoor light
        img = img * light[..., None] * tint
        img = cv2.GaussianBlur(img, (0, 0), 0.9)
        img = np.clip(img + rng.normal(0, 3.5, img.shape[:2]).astype(np.float32)[..., None],
                      0, 255).astype(np.uint8)
        eff = dpi * math.dist(corners[2], corners[3]) / W  # bottom edge, the nearer one
        extra = {"sheet_quad": [list(map(float, c)) for c in corners]}
    page_to_image = M
    if orientation % 360:
        k = (orientation // 90) % 4
        ih, iw = img.shape[:2]
        img = np.ascontiguousarray(np.rot90(img, k))
        # np.rot90 by k turns the picture counter-clockwise k times
        R = np.eye(3)
        for _ in range(k):
            h_, w_ = (ih, iw) if _ % 2 == 0 else (iw, ih)
            R = np.array([[0, 1, 0], [-1, 0, w_ - 1], [0, 0, 1]], np.float64) @ R
        page_to_image = R @ M
    return SynthPage(image=img, style=style, angle=float(angle), orientation=orientation % 360,
                     page_to_image=page_to_image, content_box=box, page_size=(W, H), dpi=dpi,
                     effective_dpi=float(eff), content=content, extra=extra)


def text_angle(page_to_out: np.ndarray, page_size: tuple[int, int],
               box: tuple[int, int, int, int] | None = None) -> float:
    """Mean skew (degrees, counter-clockwise positive) of horizontal text lines of the ideal page
    after the map ``page_to_out`` (ideal -> some image), sampled over the text area."""
    W, H = page_size
    x0, y0, x1, y1 = box or (0, 0, W, H)
    angles = []
    for fy in np.linspace(0.1, 0.9, 9):
        y = y0 + fy * (y1 - y0)
        pts = np.array([[x0 + 0.1 * (x1 - x0), y, 1], [x1 - 0.1 * (x1 - x0), y, 1]]).T
        q = page_to_out @ pts
        q = q[:2] / q[2]
        dx, dy = q[0, 1] - q[0, 0], q[1, 1] - q[1, 0]
        angles.append(math.degrees(math.atan2(-dy, dx)))
    return float(np.mean(angles))

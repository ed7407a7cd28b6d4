"""Generated record pages with known text (ground truth), for tests, the benchmark and demos.

A page looks like a printed form of a Chinese inpatient record: the hospital name, the form
title (the page type), a header line with patient fields, then body text (narrative
paragraphs, or a table for reports, orders and charge lists) and a signature line. Text is
drawn with the installed CJK fonts (core.fonts) at the given DPI; a seed makes
the page reproducible. ``SynthPage.lines`` is the ground truth in reading order.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass, field

from PIL import Image, ImageDraw, ImageFilter, ImageFont

from bingan.core import fonts

A4_INCHES = (8.27, 11.69)


def _font(style: tuple[bool, bool], px: int) -> ImageFont.FreeTypeFont:
    serif, bold = style
    return fonts.truetype(px, serif=serif, bold=bold)


# (serif, bold): the installed CJK face closest to each (core.fonts; Noto Sans/Serif CJK SC when
# fonts-noto-cjk is installed, WenQuanYi for all three when only it is)
SANS, SANS_BOLD, SERIF = (False, False), (False, True), (True, False)

# Printed titles of each page type (what a real form says at its top).
TITLES: dict[str, list[str]] = {
    "病案首页": ["住院病案首页"],
    "出院记录": ["出院记录", "出院小结"],
    "死亡记录": ["死亡记录"],
    "死亡病例讨论": ["死亡病例讨论记录"],
    "入院记录": ["入院记录", "再次入院记录"],
    "病程记录": ["首次病程记录", "日常病程记录", "上级医师查房记录", "会诊记录", "术前小结",
                 "术前讨论记录", "转科记录", "阶段小结", "抢救记录", "交接班记录"],
    "手术同意书": ["手术知情同意书", "手术同意书"],
    "麻醉同意书": ["麻醉知情同意书"],
    "麻醉术前访视": ["麻醉术前访视记录"],
    "麻醉记录": ["麻醉记录单"],
    "手术记录": ["手术记录"],
    "手术安全核查": ["手术安全核查表"],
    "术后病程": ["术后首次病程记录"],
    "输血同意书": ["输血治疗知情同意书"],
    "输血记录": ["输血记录单"],
    "特殊检查同意书": ["特殊检查（治疗）同意书"],
    "病危通知书": ["病危（重）通知书"],
    "其他知情同意书": ["授权委托书", "自费药品知情同意书"],
    "医嘱单": ["长期医嘱单", "临时医嘱单"],
    "检验报告": ["血常规检验报告单", "生化检验报告单", "检验报告单"],
    "医学影像检查报告": ["CT检查报告单", "超声检查报告单", "X线检查报告单", "磁共振检查报告单"],
    "病理报告": ["病理诊断报告单"],
    "体温单": ["体温单"],
    "护理记录": ["一般护理记录单", "护理记录单"],
    "收费清单": ["住院费用清单"],
}
TABLE_TYPES = {"检验报告", "医嘱单", "收费清单", "体温单", "护理记录", "麻醉记录",
               "手术安全核查", "输血记录"}

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "建国明华丽芳伟强军平秀英敏静磊洋勇艳杰娟涛超霞刚桂兰红玲辉鹏波斌宇浩凯健俊帆晨欣怡婷雪琳宁志海燕春梅"
DEPTS = ["普外科", "心内科", "呼吸内科", "消化内科", "神经内科", "骨科", "泌尿外科", "妇产科",
         "儿科", "肿瘤科", "内分泌科", "肾内科", "胸外科", "神经外科", "眼科", "耳鼻喉科"]
DIAGNOSES = ["急性阑尾炎", "慢性胃炎", "高血压病3级", "2型糖尿病", "冠状动脉粥样硬化性心脏病",
             "社区获得性肺炎", "脑梗死", "胆囊结石伴慢性胆囊炎", "腰椎间盘突出症", "股骨颈骨折",
             "慢性阻塞性肺疾病急性加重", "肝硬化失代偿期", "急性心肌梗死", "甲状腺结节",
             "慢性肾脏病4期", "乳腺恶性肿瘤", "子宫平滑肌瘤", "前列腺增生", "肺部感染", "贫血"]
SYMPTOMS = ["反复上腹部疼痛", "胸闷气促", "咳嗽咳痰", "头晕乏力", "右下腹疼痛", "发热伴寒战",
            "腰痛伴左下肢麻木", "恶心呕吐", "活动后心悸", "双下肢水肿", "言语不清伴右侧肢体无力",
            "尿频尿急", "皮肤巩膜黄染", "间断黑便"]
PROCEDURES = ["腹腔镜下阑尾切除术", "腹腔镜胆囊切除术", "经皮冠状动脉介入治疗", "全髋关节置换术",
              "胃镜检查", "甲状腺部分切除术", "经尿道前列腺电切术", "腰椎后路减压融合术",
              "乳腺癌改良根治术", "子宫肌瘤剔除术"]
DRUGS = ["头孢呋辛钠", "奥美拉唑肠溶胶囊", "阿司匹林肠溶片", "硝苯地平控释片", "二甲双胍片",
         "阿托伐他汀钙片", "甘露醇注射液", "氯化钠注射液", "胰岛素注射液", "左氧氟沙星注射液",
         "低分子肝素钙注射液", "呋塞米片", "氨溴索注射液", "甲硝唑氯化钠注射液"]
LAB_ITEMS = [("白细胞计数", "10^9/L", "3.5-9.5"), ("红细胞计数", "10^12/L", "4.3-5.8"),
             ("血红蛋白", "g/L", "130-175"), ("血小板计数", "10^9/L", "125-350"),
             ("中性粒细胞百分比", "%", "40-75"), ("丙氨酸氨基转移酶", "U/L", "9-50"),
             ("天门冬氨酸氨基转移酶", "U/L", "15-40"), ("总胆红素", "umol/L", "0-23"),
             ("肌酐", "umol/L", "57-111"), ("尿素", "mmol/L", "3.1-8.0"),
             ("葡萄糖", "mmol/L", "3.9-6.1"), ("钾", "mmol/L", "3.5-5.3"),
             ("钠", "mmol/L", "137-147"), ("C反应蛋白", "mg/L", "0-10")]
SENTENCES = [
    "患者{age}岁，因“{sym}{n}天”于{date}入院。",
    "入院查体：体温{t}℃，脉搏{p}次/分，呼吸{r}次/分，血压{bp}mmHg。",
    "神志清楚，精神尚可，全身皮肤黏膜无黄染，浅表淋巴结未触及肿大。",
    "双肺呼吸音清，未闻及干湿性啰音，心率{p}次/分，律齐，各瓣膜听诊区未闻及杂音。",
    "腹平软，{sym2}，肝脾肋下未触及，移动性浊音阴性，肠鸣音正常。",
    "入院后完善血常规、肝肾功能、凝血功能及心电图等相关检查。",
    "初步诊断为{dx}，予{drug}对症支持治疗，密切观察病情变化。",
    "于{date2}在全麻下行{proc}，手术过程顺利，术后安返病房。",
    "术后予抗感染、补液及营养支持治疗，切口愈合良好，无红肿渗出。",
    "今日查房，患者诉{sym3}较前明显好转，饮食睡眠可，大小便正常。",
    "上级医师查房后指示：继续目前治疗方案，复查血常规及电解质。",
    "向患者及家属交代病情及注意事项，患者及家属表示理解并签字同意。",
    "出院医嘱：注意休息，低盐低脂饮食，按时服用{drug}，门诊随诊。",
    "复查{lab}结果回报：{v}，较前有所下降，提示治疗有效。",
    "患者目前生命体征平稳，病情稳定，经上级医师同意，准予今日出院。",
]


@dataclass
class SynthPage:
    """A generated page: the image, its type, printed title and the ground-truth lines."""

    image: Image.Image
    page_type: str
    title: str
    lines: list[str] = field(default_factory=list)
    dpi: int = 300

    def jpeg(self, quality: int = 85) -> bytes:
        buf = io.BytesIO()
        self.image.save(buf, "JPEG", quality=quality, dpi=(self.dpi, self.dpi))
        return buf.getvalue()

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def _name(rnd: random.Random) -> str:
    return rnd.choice(SURNAMES) + "".join(rnd.choice(GIVEN) for _ in range(rnd.choice((1, 2))))


def _date(rnd: random.Random) -> str:
    return f"2026年{rnd.randint(1, 12)}月{rnd.randint(1, 28)}日"


def _sentence(rnd: random.Random) -> str:
    return rnd.choice(SENTENCES).format(
        age=rnd.randint(18, 90), sym=rnd.choice(SYMPTOMS), n=rnd.randint(1, 30),
        date=_date(rnd), date2=_date(rnd), t=f"{rnd.uniform(36.2, 39.2):.1f}",
        p=rnd.randint(60, 110), r=rnd.randint(14, 24),
        bp=f"{rnd.randint(100, 170)}/{rnd.randint(60, 100)}", sym2=rnd.choice(
            ["右下腹压痛阳性", "全腹无压痛及反跳痛", "上腹部轻压痛"]),
        dx=rnd.choice(DIAGNOSES), drug=rnd.choice(DRUGS), proc=rnd.choice(PROCEDURES),
        sym3=rnd.choice(SYMPTOMS), lab=rnd.choice(LAB_ITEMS)[0],
        v=f"{rnd.uniform(1, 20):.2f}")


def _wrap(text: str, font: ImageFont.FreeTypeFont, width: float) -> list[str]:
    lines, cur = [], ""
    for ch in text:
        if font.getlength(cur + ch) > width and cur:
            lines.append(cur)
            cur = ch
        else:
            cur += ch
    if cur:
        lines.append(cur)
    return lines


def make_page(seed: int, page_type: str | None = None, *, dpi: int = 300,
              hospital: str = "示例市第一人民医院", noise: bool = True,
              body_pt: float | None = None, max_lines: int | None = None,
              size: tuple[float, float] = A4_INCHES, title: str | None = None,
              continuation: bool = False) -> SynthPage:
    """Draw one page. ``page_type`` None picks one from the seed; ``title`` overrides the
    printed title; ``continuation`` draws a follow-on page (no hospital name, no title);
    ``max_lines`` limits the body (small pages for tests); ``noise`` adds paper tone, sensor
    noise and blur as a scanner would."""
    rnd = random.Random(seed)
    page_type = page_type or rnd.choice(sorted(TITLES))
    picked = rnd.choice(TITLES[page_type]) if page_type in TITLES else page_type
    title = title or picked
    W, H = round(size[0] * dpi), round(size[1] * dpi)
    px = lambda pt: max(8, round(pt * dpi / 72))  # noqa: E731
    paper = rnd.randint(238, 252) if noise else 255
    img = Image.new("L", (W, H), paper)
    d = ImageDraw.Draw(img)
    ink = rnd.randint(0, 40) if noise else 0
    margin_x, y = round(0.9 * dpi), round(0.6 * dpi)
    width = W - 2 * margin_x
    lines: list[str] = []

    def centered(text: str, font: ImageFont.FreeTypeFont, gap: float) -> None:
        nonlocal y
        w = font.getlength(text)
        d.text(((W - w) / 2, y), text, font=font, fill=ink)
        lines.append(text)
        y += round(font.size * gap)

    title_pt = rnd.choice((18, 20, 22))
    if continuation:
        title = ""
    else:
        centered(hospital, _font(SANS, px(14)), 1.5)
        centered(title, _font(SANS_BOLD, px(title_pt)), 1.9)
    bpt = body_pt or rnd.choice((10.5, 11, 12))
    body = _font(SERIF, px(bpt))
    step = round(body.size * 1.75)
    header = [f"姓名：{_name(rnd)}", f"性别：{rnd.choice('男女')}", f"年龄：{rnd.randint(1, 95)}岁",
              f"科别：{rnd.choice(DEPTS)}", f"床号：{rnd.randint(1, 60)}",
              f"住院号：ZY{rnd.randint(10**9, 10**10 - 1)}"]
    hx: float = margin_x
    gap = (width - sum(body.getlength(h) for h in header)) / (len(header) - 1)
    for h in header:
        d.text((hx, y), h, font=body, fill=ink)
        hx += body.getlength(h) + gap
    lines.append("".join(header))
    y += step
    d.line((margin_x, y - step * 0.15, W - margin_x, y - step * 0.15), fill=ink, width=max(1, dpi // 100))
    bottom = H - round(1.0 * dpi)
    count = 0
    if page_type in TABLE_TYPES:
        cols = [0.0, 0.42, 0.62, 0.8]
        if page_type == "检验报告":
            heads = ["项目名称", "结果", "单位", "参考范围"]
        elif page_type == "医嘱单":
            heads = ["开始日期", "医嘱内容", "剂量", "执行者"]
            cols = [0.0, 0.22, 0.68, 0.85]
        else:
            heads = ["项目", "数量", "单价", "金额"]
        rows = [heads]
        while y + step * (len(rows) + 2) < bottom and (max_lines is None or len(rows) <= max_lines):
            if page_type == "检验报告":
                name, unit, ref = rnd.choice(LAB_ITEMS)
                rows.append([name, f"{rnd.uniform(0.5, 150):.1f}", unit, ref])
            elif page_type == "医嘱单":
                rows.append([f"{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}",
                             rnd.choice(DRUGS), f"{rnd.choice((0.5, 1, 2, 250, 500))}g",
                             _name(rnd)])
            else:
                qty, price = rnd.randint(1, 20), rnd.uniform(1, 300)
                rows.append([rnd.choice(DRUGS + PROCEDURES), str(qty), f"{price:.2f}",
                             f"{qty * price:.2f}"])
        for row in rows:
            for c, cell in zip(cols, row):
                d.text((margin_x + c * width, y), cell, font=body, fill=ink)
            lines.append("".join(row))
            y += step
            count += 1
    else:
        while y + step * 3 < bottom and (max_lines is None or count < max_lines):
            para = "".join(_sentence(rnd) for _ in range(rnd.randint(2, 4)))
            wrapped = _wrap(para, body, width - body.size * 2)
            for i, ln in enumerate(wrapped):
                if y + step * 3 >= bottom or (max_lines is not None and count >= max_lines):
                    break
                d.text((margin_x + (body.size * 2 if i == 0 else 0), y), ln, font=body, fill=ink)
                lines.append(ln)
                y += step
                count += 1
    sig = f"医师签名：{_name(rnd)}　　{_date(rnd)}"
    sy = min(y + step, bottom)
    d.text((W - margin_x - body.getlength(sig), sy), sig, font=body, fill=ink)
    lines.append(sig.replace("　", ""))
    if noise:
        img = img.filter(ImageFilter.GaussianBlur(radius=dpi / 400))
        import numpy as np

        arr = np.asarray(img, dtype=np.int16)
        arr = arr + np.random.default_rng(seed).normal(0, 5, arr.shape).astype(np.int16)
        img = Image.fromarray(arr.clip(0, 255).astype("uint8"), "L")
    return SynthPage(image=img.convert("RGB"), page_type=page_type, title=title,
                     lines=lines, dpi=dpi)

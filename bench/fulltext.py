"""Full-text benchmark: Whoosh (plugin ``fulltext``) and tantivy (plugin ``tantivy``) side by
side on the same generated Chinese medical pages and the same queries.

Pages are generated from seeded vocabulary lists (diagnoses with ICD-10 codes, symptoms,
signs, drugs with doses, operations, examinations, lab results) in the shapes of real record
pages (admission note, progress note, operation note, discharge summary, lab report, orders),
about 420 characters each, 50 pages per admission; page k is the same text for every backend.
Each backend is indexed through its plugin's bulk API (``replace_many``: the same analysis and
documents as ``index_record``, committed every ``--batch`` admissions), then asked
``--queries`` queries through the ``search_fulltext`` hook of a runtime where only that plugin
is enabled (limit 20, offset 0, snippets included): 2-4 character phrases, most taken from
inside longer words (阑尾 from 急性阑尾炎), some multi-part (阑尾炎 K35.8), a few absent.

    .venv/bin/python bench/fulltext.py                      # whoosh 100k, tantivy 100k and 1M
    .venv/bin/python bench/fulltext.py --whoosh 20000 --tantivy 20000,200000 --queries 300

Goal (issue #4): p95 <= 20 ms over 1,000,000 pages with tantivy; Whoosh's figures beside it.
Whoosh is pure Python: it is run at a smaller size (default 100,000 pages) and the output says
so; tantivy is also run at that size so the two can be compared at equal size. Query times are
printed as wall-clock and as CPU time of the calling thread (on a shared machine the first is
inflated by other work). The default run took about 50 minutes on a loaded 2-core machine.

The indexes are kept in --workdir (default $BINGAN_BENCH_CACHE/bingan-bench-fulltext, else
under the system's temporary folder, outside the repository) and reused by the next run; a
build that was interrupted resumes after its last commit (``--fresh`` rebuilds, ``--discard``
deletes them afterwards, ``--build-only`` builds without querying):

    nice -n 10 .venv/bin/python bench/fulltext.py --whoosh 0 --tantivy 10000000 --build-only
    nice -n 10 .venv/bin/python bench/fulltext.py --whoosh 200000 --tantivy 10000000
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from bingan.core.fulltext import human_size as human  # noqa: E402
from bingan.core.runtime import build_runtime, set_current  # noqa: E402
from support import make_config  # noqa: E402

PAGES_PER_ADMISSION = 50
CACHE = Path(os.environ.get("BINGAN_BENCH_CACHE") or tempfile.gettempdir()) / \
    "bingan-bench-fulltext"
# bump when the generated pages change: kept indexes of another version are not reused
GEN_VERSION = 1

DIAGNOSES = [
    ("急性阑尾炎", "K35.8"), ("急性化脓性阑尾炎", "K35.9"), ("慢性阑尾炎", "K36"), ("阑尾周围脓肿", "K35.1"),
    ("原发性高血压", "I10"), ("高血压性心脏病", "I11.9"), ("2型糖尿病", "E11.9"), ("糖尿病肾病", "E11.2"),
    ("冠状动脉粥样硬化性心脏病", "I25.1"), ("不稳定型心绞痛", "I20.0"), ("急性心肌梗死", "I21.9"),
    ("心房颤动", "I48"), ("慢性心力衰竭", "I50.9"), ("社区获得性肺炎", "J18.9"), ("慢性阻塞性肺疾病急性加重", "J44.1"),
    ("支气管哮喘", "J45.9"), ("肺结节", "R91"), ("胆囊结石伴慢性胆囊炎", "K80.1"), ("急性胰腺炎", "K85.9"),
    ("胃溃疡", "K25.9"), ("上消化道出血", "K92.2"), ("肝硬化", "K74.6"), ("腹股沟疝", "K40.9"),
    ("肠梗阻", "K56.7"), ("结肠癌", "C18.9"), ("胃癌", "C16.9"), ("肺癌", "C34.9"), ("乳腺癌", "C50.9"),
    ("甲状腺结节", "E04.1"), ("脑梗死", "I63.9"), ("脑出血", "I61.9"), ("短暂性脑缺血发作", "G45.9"),
    ("腰椎间盘突出症", "M51.2"), ("股骨颈骨折", "S72.0"), ("桡骨远端骨折", "S52.5"), ("膝关节骨性关节炎", "M17.9"),
    ("泌尿系结石", "N20.9"), ("前列腺增生", "N40"), ("慢性肾脏病5期", "N18.5"), ("尿路感染", "N39.0"),
    ("子宫肌瘤", "D25.9"), ("异位妊娠", "O00.9"), ("贫血", "D64.9"), ("低钾血症", "E87.6"),
    ("带状疱疹", "B02.9"), ("蜂窝织炎", "L03.9"), ("脓毒症", "A41.9"), ("病毒性心肌炎", "I40.0"),
]
SYMPTOMS = ["转移性右下腹痛", "右下腹痛", "上腹痛", "腹胀", "恶心呕吐", "发热", "畏寒寒战", "咳嗽咳痰", "胸闷气促",
            "胸痛", "心悸", "头晕头痛", "乏力纳差", "呼吸困难", "双下肢水肿", "尿频尿急尿痛", "肉眼血尿", "黑便",
            "呕血", "腰背部疼痛", "左下肢麻木", "言语不清", "肢体无力", "意识障碍", "皮疹", "关节肿痛", "多饮多尿"]
SIGNS = ["神志清楚", "精神可", "皮肤巩膜无黄染", "浅表淋巴结未触及肿大", "双肺呼吸音清", "双肺可闻及湿啰音",
         "心率齐", "各瓣膜听诊区未闻及病理性杂音", "腹软", "右下腹压痛", "麦氏点压痛及反跳痛", "肝脾肋下未触及",
         "移动性浊音阴性", "肠鸣音正常", "双下肢无水肿", "四肢肌力5级", "病理征未引出", "颈软无抵抗"]
DRUGS = [("头孢曲松钠", "2g 静脉滴注 qd"), ("头孢呋辛钠", "1.5g 静脉滴注 q12h"), ("左氧氟沙星", "0.5g 静脉滴注 qd"),
         ("甲硝唑", "0.5g 静脉滴注 q8h"), ("哌拉西林他唑巴坦", "4.5g 静脉滴注 q8h"), ("阿司匹林肠溶片", "100mg 口服 qd"),
         ("氯吡格雷", "75mg 口服 qd"), ("阿托伐他汀钙片", "20mg 口服 qn"), ("硝苯地平控释片", "30mg 口服 qd"),
         ("氨氯地平", "5mg 口服 qd"), ("美托洛尔缓释片", "47.5mg 口服 qd"), ("二甲双胍", "0.5g 口服 tid"),
         ("门冬胰岛素", "6U 皮下注射 tid"), ("甘精胰岛素", "12U 皮下注射 qn"), ("奥美拉唑", "40mg 静脉滴注 qd"),
         ("泮托拉唑", "40mg 静脉滴注 qd"), ("低分子肝素钙", "4100IU 皮下注射 q12h"), ("呋塞米", "20mg 静脉推注 qd"),
         ("氯化钾缓释片", "1g 口服 tid"), ("甘露醇", "125ml 静脉滴注 q8h"), ("地塞米松", "5mg 静脉推注 st"),
         ("布洛芬缓释胶囊", "0.3g 口服 bid"), ("盐酸曲马多", "100mg 肌内注射 st"), ("复方氯化钠注射液", "500ml 静脉滴注 qd")]
OPERATIONS = [("腹腔镜阑尾切除术", "47.01"), ("开腹阑尾切除术", "47.09"), ("腹腔镜胆囊切除术", "51.23"),
              ("经皮冠状动脉介入治疗", "00.66"), ("冠状动脉造影术", "88.57"), ("胃镜下止血术", "44.43"),
              ("腹股沟疝无张力修补术", "53.05"), ("股骨头置换术", "81.52"), ("腰椎间盘髓核摘除术", "80.51"),
              ("经尿道前列腺电切术", "60.29"), ("甲状腺部分切除术", "06.39"), ("乳腺癌改良根治术", "85.43"),
              ("结肠癌根治术", "45.73"), ("输尿管镜碎石取石术", "56.0"), ("剖宫产术", "74.1")]
EXAMS = ["血常规", "尿常规", "大便常规加隐血", "肝功能", "肾功能", "电解质", "凝血功能", "心肌酶谱", "C反应蛋白",
         "降钙素原", "糖化血红蛋白", "胸部CT", "腹部CT", "头颅MRI", "心脏彩超", "腹部超声", "心电图", "胃镜"]
LABS = [("白细胞计数", "×10^9/L", 3.0, 18.0), ("中性粒细胞百分比", "%", 40, 92), ("血红蛋白", "g/L", 70, 160),
        ("血小板计数", "×10^9/L", 80, 350), ("C反应蛋白", "mg/L", 1, 150), ("血钾", "mmol/L", 2.8, 5.6),
        ("血钠", "mmol/L", 128, 146), ("肌酐", "μmol/L", 45, 600), ("尿素氮", "mmol/L", 2.5, 25),
        ("谷丙转氨酶", "U/L", 8, 200), ("总胆红素", "μmol/L", 5, 80), ("空腹血糖", "mmol/L", 3.9, 18),
        ("肌钙蛋白I", "ng/ml", 0.01, 12), ("D-二聚体", "mg/L", 0.1, 8), ("降钙素原", "ng/ml", 0.02, 20)]
DEPARTMENTS = ["普外科", "心血管内科", "呼吸内科", "消化内科", "神经内科", "骨科", "泌尿外科", "内分泌科", "肾内科",
               "妇产科", "胸外科", "重症医学科"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彬建国志鹏辉海波宁"
FILLER = ["病情平稳", "继续目前治疗方案", "注意观察病情变化", "向患者及家属交代病情", "患者及家属表示理解",
          "遵医嘱执行", "复查相关指标", "定期门诊随访", "低盐低脂饮食", "监测生命体征", "完善相关检查"]


class Generator:
    """Pages of one admission from its own seeded RNG, so page k is the same for every run."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def admission(self, adm_id: int) -> list[str]:
        rnd = random.Random(self.seed * 10_000_019 + adm_id)
        dx, code = rnd.choice(DIAGNOSES)
        dx2, code2 = rnd.choice(DIAGNOSES)
        op, op_code = rnd.choice(OPERATIONS)
        name = rnd.choice(SURNAMES) + "".join(rnd.choice(GIVEN) for _ in range(rnd.randint(1, 2)))
        ctx = dict(dx=dx, code=code, dx2=dx2, code2=code2, op=op, op_code=op_code, name=name,
                   sex=rnd.choice("男女"), age=rnd.randint(18, 92), dept=rnd.choice(DEPARTMENTS),
                   no=f"ZY{rnd.randint(10**9, 10**10 - 1)}")
        kinds = ["front", "admission", "admission"] + ["progress"] * 18 + ["operation"] * 2 + \
            ["lab"] * 12 + ["orders"] * 8 + ["nursing"] * 5 + ["discharge", "discharge"]
        return [self.page(rnd, kind, ctx) for kind in kinds[:PAGES_PER_ADMISSION]]

    @staticmethod
    def _vitals(rnd):
        return (f"T {rnd.uniform(36.0, 39.5):.1f}℃ P {rnd.randint(58, 120)}次/分 "
                f"R {rnd.randint(14, 28)}次/分 BP {rnd.randint(95, 180)}/{rnd.randint(55, 105)}mmHg")

    def _sentences(self, rnd, ctx, n):
        out = []
        for _ in range(n):
            k = rnd.randrange(7)
            if k == 0:
                out.append(f"患者{rnd.choice(SYMPTOMS)}{rnd.randint(1, 14)}天，伴{rnd.choice(SYMPTOMS)}")
            elif k == 1:
                out.append("查体：" + "，".join(rnd.sample(SIGNS, 4)))
            elif k == 2:
                d, dose = rnd.choice(DRUGS)
                out.append(f"予{d} {dose}治疗")
            elif k == 3:
                finding = rnd.choice(["未见明显异常", "较前好转", "提示炎症", "较前加重"])
                out.append(f"复查{rnd.choice(EXAMS)}示{finding}")
            elif k == 4:
                out.append(f"诊断考虑{ctx['dx']}（{ctx['code']}），合并{ctx['dx2']}")
            elif k == 5:
                out.append(self._vitals(rnd))
            else:
                out.append("，".join(rnd.sample(FILLER, 3)))
        return "。".join(out) + "。"

    def page(self, rnd, kind, c) -> str:
        head = f"{c['dept']} 姓名：{c['name']} 性别：{c['sex']} 年龄：{c['age']}岁 住院号：{c['no']}\n"
        if kind == "front":
            body = (f"住院病案首页 出院诊断：主要诊断 {c['dx']} {c['code']}；其他诊断 {c['dx2']} {c['code2']}。"
                    f"手术及操作：{c['op']} {c['op_code']}。离院方式：医嘱离院。" + self._sentences(rnd, c, 6))
        elif kind == "admission":
            body = (f"入院记录 主诉：{rnd.choice(SYMPTOMS)}{rnd.randint(1, 10)}天。现病史："
                    + self._sentences(rnd, c, 9) + f"初步诊断：1.{c['dx']} 2.{c['dx2']}")
        elif kind == "progress":
            body = "病程记录 " + self._sentences(rnd, c, 10)
        elif kind == "operation":
            body = (f"手术记录 手术名称：{c['op']}。麻醉方式：全身麻醉。术中所见："
                    + self._sentences(rnd, c, 8) + "手术顺利，术后安返病房。")
        elif kind == "lab":
            items = rnd.sample(LABS, 8)
            body = f"检验报告单 {rnd.choice(EXAMS)}\n" + "\n".join(
                f"{n} {rnd.uniform(lo, hi):.2f} {u} {'↑' if rnd.random() < 0.3 else ''}"
                for n, u, lo, hi in items) + "\n" + self._sentences(rnd, c, 3)
        elif kind == "orders":
            body = "长期医嘱单\n" + "\n".join(f"{d} {dose}" for d, dose in rnd.sample(DRUGS, 7)) + \
                "\n" + self._sentences(rnd, c, 3)
        elif kind == "nursing":
            body = "护理记录 " + self._vitals(rnd) + "。" + self._sentences(rnd, c, 7)
        else:
            body = (f"出院记录 入院诊断：{c['dx']}。出院诊断：{c['dx']}（{c['code']}）。诊疗经过："
                    + self._sentences(rnd, c, 8) + "出院医嘱：" + "，".join(rnd.sample(FILLER, 3)) + "。")
        return head + body + self._sentences(rnd, c, 6)


def make_queries(n: int, seed: int) -> list[str]:
    """2-4 character phrases, mostly from inside longer words, some multi-part, a few absent."""
    rnd = random.Random(seed)
    words = [d for d, _ in DIAGNOSES] + SYMPTOMS + SIGNS + [d for d, _ in DRUGS] + \
        [o for o, _ in OPERATIONS] + EXAMS + [n for n, *_ in LABS]
    out = []
    for i in range(n):
        r = rnd.random()
        if r < 0.85:
            w = rnd.choice([w for w in words if len(w) >= 2])
            k = rnd.randint(2, min(4, len(w)))
            s = rnd.randrange(0, len(w) - k + 1)
            out.append(w[s:s + k])
        elif r < 0.95:
            d, code = rnd.choice(DIAGNOSES)
            out.append(f"{d[-3:]} {code}")
        else:
            w = rnd.choice(words)
            out.append(w[:3][::-1])  # reordered characters: usually no page has them
    return out


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def query_kind(q: str) -> str:
    """'term' (one or two characters: one term), 'phrase' (3-4 characters: once a phrase of
    bigrams, now one n-gram term in both backends), 'multi' (a Han run and an ICD code)."""
    if " " in q:
        return "multi"
    return "term" if len(q) <= 2 else "phrase"


def run_backend(name: str, pages: int, gen: Generator, queries: list[str], workdir: Path,
                batch: int, threads: int, reuse: bool, progress_every: int = 1,
                build_only: bool = False, budget_s: float | None = None) -> dict:
    home = workdir / f"{name}-{pages}-g{GEN_VERSION}"
    done_marker = home / "bench-loaded"
    # after each commit: admissions indexed so far and the seconds spent, so an interrupted
    # build resumes where it stopped (replace_many replaces an admission's pages: redoing
    # the last batch is harmless)
    resume = home / "bench-progress"
    reused = reuse and done_marker.exists()
    start_adm, t_index, cpu_index = 1, 0.0, 0.0
    if reuse and not reused and resume.exists():
        done_adm, t_index, cpu_index = resume.read_text().split()
        start_adm, t_index, cpu_index = int(done_adm) + 1, float(t_index), float(cpu_index)
        print(f"  {name}: resuming after admission {start_adm - 1:,}", file=sys.stderr)
    elif not reused:
        shutil.rmtree(home, ignore_errors=True)
    rt = build_runtime(make_config(home, f"sqlite:///{home}/unused.sqlite3", enabled=[name]))
    if name == "fulltext":
        from bingan_fulltext.backend import PageText
        from bingan_fulltext.service import close_all, index_for
        bulk: dict = {}
    else:
        from bingan_tantivy.backend import PageText
        from bingan_tantivy.service import close_all, index_for
        bulk = dict(heap_mb=256, threads=threads)
    ix = index_for(rt)
    if name == "fulltext":
        ix.writer_memory_mb = 512  # a bigger buffer for the bulk load (setting default: 128)
    admissions = pages // PAGES_PER_ADMISSION
    t_start = time.monotonic()
    stopped = False
    for first in range(start_adm, admissions + 1 if not reused else 1, batch):
        if budget_s is not None and time.monotonic() - t_start > budget_s:
            stopped = True  # the time budget is spent: query what is built (resumes later)
            print(f"  {name}: time budget spent after {first - 1:,} admissions; the next run "
                  "resumes the build", file=sys.stderr, flush=True)
            break
        chunk = []
        for adm in range(first, min(first + batch, admissions + 1)):
            texts = gen.admission(adm)
            chunk.append((adm, [PageText(adm * 100 + i, i, t) for i, t in enumerate(texts, 1)]))
        t0, c0 = time.perf_counter(), time.process_time()
        ix.replace_many(chunk, **bulk)
        t_index += time.perf_counter() - t0
        cpu_index += time.process_time() - c0
        last = min(first + batch - 1, admissions)
        resume.write_text(f"{last} {t_index} {cpu_index}")
        done = last * PAGES_PER_ADMISSION
        if (last // batch) % progress_every == 0 or last == admissions:
            print(f"  {time.strftime('%H:%M:%S')} {name}: {done:>10,} pages indexed, "
                  f"{t_index:7.1f} s in the index ({time.monotonic() - t_start:.0f} s with "
                  f"generation, this run), {done / max(t_index, 1e-9):,.0f} pages/s",
                  file=sys.stderr, flush=True)
    if reused:
        t_index, cpu_index = map(float, done_marker.read_text().split())
    elif not stopped:
        done_marker.write_text(f"{t_index} {cpu_index}")
    size = du(ix.path)
    stats = ix.stats()
    if build_only:
        close_all()
        rt.close()
        return dict(name="whoosh" if name == "fulltext" else "tantivy", pages=stats["pages"],
                    index_s=t_index, index_cpu=cpu_index, size=size, segments=stats["segments"],
                    partial=stopped)
    # queries through the hook, as the search plugin asks them
    set_current(rt)
    hook = rt.pm.hook.search_fulltext
    for q in queries[:50]:  # warm-up: open the searcher, touch the files
        hook(query=q, limit=20, offset=0, admissions=None, rt=rt)
    lat, cpu, nhits, empty = [], [], 0, 0
    by_kind: dict[str, list[float]] = {}
    for q in queries:
        c0, t0 = time.thread_time(), time.perf_counter()
        hits = hook(query=q, limit=20, offset=0, admissions=None, rt=rt)
        lat.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.thread_time() - c0) * 1000)
        by_kind.setdefault(query_kind(q), []).append(cpu[-1])
        nhits += len(hits)
        empty += not hits
    counts = {q: ix.count(q) for q in queries[:40]}
    close_all()
    rt.close()
    set_current(None)
    qs = statistics.quantiles(lat, n=100)
    cq = statistics.quantiles(cpu, n=100)
    return dict(name="whoosh" if name == "fulltext" else "tantivy", pages=stats["pages"],
                cpu_p50=cq[49], cpu_p95=cq[94], index_s=t_index, index_cpu=cpu_index, size=size,
                segments=stats["segments"], reused=reused, partial=stopped,
                kinds={k: (len(v), statistics.median(v), statistics.quantiles(v, n=100)[94])
                       for k, v in by_kind.items()},
                p50=qs[49], p95=qs[94], p99=qs[98], max=max(lat), mean_hits=nhits / len(queries),
                empty=empty, counts=counts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--whoosh", type=str, default="100000",
                    help="page counts for Whoosh, comma-separated (0: skip)")
    ap.add_argument("--tantivy", type=str, default="100000,1000000", help="page counts for tantivy")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=20260504)
    ap.add_argument("--batch", type=int, default=400, help="admissions per commit while loading")
    ap.add_argument("--threads", type=int, default=2, help="tantivy writer threads while loading")
    ap.add_argument("--workdir", type=Path, default=CACHE,
                    help="where the indexes are built, kept and reused (default %(default)s)")
    ap.add_argument("--fresh", action="store_true",
                    help="rebuild the indexes even when a complete or partial one is kept")
    ap.add_argument("--discard", action="store_true", help="delete the indexes afterwards")
    ap.add_argument("--build-only", action="store_true", help="build (or resume), no queries")
    ap.add_argument("--progress-every", type=int, default=10,
                    help="print the build progress every this many commits")
    ap.add_argument("--budget-s", type=float, default=None,
                    help="stop each build after this many seconds and query what is built "
                         "(the next run resumes it)")
    ap.add_argument("--keep", action="store_true", help="(the default now)")
    ap.add_argument("--reuse", action="store_true", help="(the default now)")
    args = ap.parse_args()
    workdir = args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    gen = Generator(args.seed)
    queries = make_queries(args.queries, args.seed + 1)
    sample = gen.admission(1)
    print(f"corpus: {PAGES_PER_ADMISSION} pages per admission, "
          f"~{sum(map(len, sample)) / len(sample):.0f} characters per page; "
          f"{len(queries)} queries (limit 20, with snippets) through search_fulltext")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start "
          "(shared with other work)")
    runs = [("fulltext", int(n)) for n in args.whoosh.split(",") if int(n)] + \
        [("tantivy", int(n)) for n in args.tantivy.split(",") if int(n)]
    results = []
    try:
        for name, n in runs:
            results.append(run_backend(name, n, gen, queries, workdir, args.batch, args.threads,
                                       not args.fresh, args.progress_every, args.build_only,
                                       args.budget_s))
    finally:
        if args.discard:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.build_only:
        for r in results:
            print(f"{r['name']:<8} {r['pages']:>11,} pages, {r['index_s']:.0f} s in the index "
                  f"({r['index_cpu']:.0f} s CPU), {r['pages'] / r['index_s']:,.0f} pages/s, "
                  f"{human(r['size'])}, {r['segments']} segments")
        return
    print(f"load average at end {os.getloadavg()[0]:.1f}\n")
    print("index: wall-clock seconds in the index calls (CPU seconds of this process); "
          "query: wall-clock ms per search_fulltext call, and CPU ms of the calling thread")
    print(f"{'backend':<8} {'pages':>10} {'index s':>8} {'(cpu)':>7} {'pages/s':>8} {'size':>9} "
          f"{'segs':>4} {'p50':>6} {'p95':>6} {'p99':>6} {'max':>6} {'cpu p50':>7} {'cpu p95':>7} "
          f"{'hits/q':>6} {'empty':>5}")
    for r in results:
        print(f"{r['name']:<8} {r['pages']:>10,} {r['index_s']:>8.1f} {r['index_cpu']:>7.1f} "
              f"{r['pages'] / r['index_s']:>8,.0f} {human(r['size']):>9} {r['segments']:>4} "
              f"{r['p50']:>6.2f} {r['p95']:>6.2f} {r['p99']:>6.2f} {r['max']:>6.1f} "
              f"{r['cpu_p50']:>7.2f} {r['cpu_p95']:>7.2f} {r['mean_hits']:>6.1f} {r['empty']:>5}")
    print("\nCPU ms per query by kind (queries, p50, p95):")
    for r in results:
        print(f"  {r['name']:<8} {r['pages']:>10,}  " + "   ".join(
            f"{k} {n}: {p50:.2f} / {p95:.2f}" for k, (n, p50, p95) in sorted(r["kinds"].items()))
            + ("   (index reused, load time from its run)" if r["reused"] else ""))
    print("\nGoals (issue 18): p95 <= 20 ms (wall clock; CPU beside it), tantivy at "
          "10,000,000 pages, Whoosh at 1,000,000 pages")
    for engine, goal_pages in (("tantivy", 10_000_000), ("whoosh", 1_000_000)):
        mine = sorted((r for r in results if r["name"] == engine), key=lambda r: r["pages"])
        if not mine:
            continue
        r = mine[-1]
        verdict = "met" if r["p95"] <= 20 else "NOT met"
        rate = r["pages"] / r["index_s"]
        if r["pages"] >= goal_pages:
            print(f"  {engine:<8} at {r['pages']:,} pages: p95 {r['p95']:.2f} ms (CPU "
                  f"{r['cpu_p95']:.2f}), {verdict}; index {human(r['size'])}, built at "
                  f"{rate:,.0f} pages/s")
        else:
            print(f"  {engine:<8} measured at {r['pages']:,} pages only (goal size "
                  f"{goal_pages:,}): p95 {r['p95']:.2f} ms (CPU {r['cpu_p95']:.2f}), {verdict} "
                  f"at that size; at its build rate ({rate:,.0f} pages/s) the goal size would "
                  f"take {goal_pages / rate / 3600:.1f} h and about "
                  f"{human(int(r['size'] * goal_pages / r['pages']))}")
    # same size, same corpus: the two engines must count the same pages for the same query
    by_size: dict[int, dict[str, dict]] = {}
    for r in results:
        by_size.setdefault(r["pages"], {})[r["name"]] = r["counts"]
    for size, pair in by_size.items():
        if len(pair) == 2:
            diff = [q for q in pair["whoosh"] if pair["whoosh"][q] != pair["tantivy"][q]]
            print(f"match counts at {size:,} pages, {len(pair['whoosh'])} queries: "
                  + ("identical" if not diff else f"DIFFER on {diff[:5]}"))


if __name__ == "__main__":
    main()

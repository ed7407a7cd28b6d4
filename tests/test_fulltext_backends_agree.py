"""Both full-text backends, each alone behind the hooks, on one generated corpus: the same hit
sets for phrase queries, and both equal to a brute-force scan of the page texts.

Lives in tests/ because it uses two plugins (a plugin's own tests use only itself)."""

from __future__ import annotations

import random
import re
from importlib.metadata import entry_points

import pytest

from bingan.core.runtime import build_runtime, set_current
from support import make_config
from fulltext_refs import admission, pages_of

DIAGNOSES = ["急性阑尾炎", "慢性阑尾炎", "阑尾周围脓肿", "原发性高血压", "2型糖尿病", "冠状动脉粥样硬化性心脏病",
             "社区获得性肺炎", "胆囊结石伴慢性胆囊炎", "腰椎间盘突出症", "脑梗死"]
SYMPTOMS = ["转移性右下腹痛", "发热", "咳嗽咳痰", "胸闷气促", "头晕头痛", "恶心呕吐", "腹胀", "乏力"]
DRUGS = ["头孢曲松钠", "左氧氟沙星", "阿司匹林肠溶片", "二甲双胍", "硝苯地平控释片", "奥美拉唑"]
PROCEDURES = ["腹腔镜阑尾切除术", "腹腔镜胆囊切除术", "经皮冠状动脉介入治疗", "胸部CT检查", "腰椎MRI"]
CODES = ["K35.8", "K35.9", "I10", "E11.9", "J18.9", "K80.1"]


def _page(rnd: random.Random) -> str:
    parts = []
    for _ in range(rnd.randint(3, 8)):
        kind = rnd.randrange(4)
        if kind == 0:
            parts.append(f"诊断：{rnd.choice(DIAGNOSES)}（{rnd.choice(CODES)}）")
        elif kind == 1:
            parts.append(f"患者{rnd.choice(SYMPTOMS)}{rnd.randint(1, 9)}天")
        elif kind == 2:
            parts.append(f"予{rnd.choice(DRUGS)}治疗")
        else:
            # OCR sometimes breaks a line inside a word
            p = rnd.choice(PROCEDURES)
            cut = rnd.randrange(1, len(p))
            parts.append(f"行{p[:cut]}\n{p[cut:]}" if rnd.random() < 0.3 else f"行{p}")
    return "，".join(parts) + "。"


def _corpus(seed: int = 20260501, admissions: int = 40):
    rnd = random.Random(seed)
    return {adm: [_page(rnd) for _ in range(rnd.randint(2, 6))] for adm in range(1, admissions + 1)}


def _queries(corpus, seed: int = 7) -> list[str]:
    rnd = random.Random(seed)
    words = DIAGNOSES + SYMPTOMS + DRUGS + PROCEDURES
    out = ["阑尾", "阑尾炎", "尾阑", "胆囊", "切除术", "胆囊切除", "炎阑", "K35.8", "k35", "癌"]
    for _ in range(40):
        w = rnd.choice(words)
        n = rnd.randint(2, min(4, len(w)))
        start = rnd.randrange(0, len(w) - n + 1)
        out.append(w[start:start + n])  # often a phrase inside a longer word
    out += [q[::-1] for q in out[-10:]]  # reordered characters: mostly no hits
    return out


def _brute_force(corpus, query: str) -> set[tuple[int, int]]:
    def norm(t: str) -> str:
        return re.sub(r"(?<=[\u4e00-\u9fff])\s+(?=[\u4e00-\u9fff])", "", t).lower()

    q = query.lower()
    if re.fullmatch(r"[a-z0-9]+", q):  # a word: whole word or a part of a code
        pat = re.compile(rf"(?<![a-z0-9]){re.escape(q)}(?![a-z0-9])")
    else:
        pat = re.compile(re.escape(q))
    return {(adm, ref.id) for adm, texts in corpus.items()
            for ref, text in pages_of(adm, texts) if pat.search(norm(text))}


def _runtime(tmp_path, name):
    return build_runtime(make_config(tmp_path / name, f"sqlite:///{tmp_path}/{name}.db",
                                     enabled=[name]))


def test_whoosh_and_tantivy_return_the_same_pages(tmp_path):
    if "fulltext" not in {ep.name for ep in entry_points(group="bingan")}:
        pytest.skip("the fulltext (Whoosh) plugin is not installed")
    from bingan_tantivy import service as tantivy_service

    corpus = _corpus()
    queries = _queries(corpus)
    runtimes = {name: _runtime(tmp_path, name) for name in ("fulltext", "tantivy")}
    try:
        answers: dict[str, dict[str, set]] = {}
        for name, rt in runtimes.items():
            set_current(rt)  # hooks find their settings through the current runtime
            for adm, texts in corpus.items():
                rt.pm.hook.index_record(rt=rt, admission=admission(adm), pages=pages_of(adm, texts))
            answers[name] = {
                q: {(h.admission_id, h.page_id)
                    for h in rt.pm.hook.search_fulltext(rt=rt, query=q, limit=1000, offset=0,
                                                               admissions=None)}
                for q in queries}
        with_hits = 0
        for q in queries:
            expected = _brute_force(corpus, q)
            assert answers["fulltext"][q] == expected, f"Whoosh differs on {q!r}"
            assert answers["tantivy"][q] == expected, f"tantivy differs on {q!r}"
            with_hits += bool(expected)
        assert with_hits >= len(queries) // 2  # the comparison is not only about empty sets
        assert not answers["tantivy"]["尾阑"] and answers["tantivy"]["阑尾"]
    finally:
        import bingan_fulltext.service as fulltext_service

        fulltext_service.close_all()
        tantivy_service.close_all()
        for rt in runtimes.values():
            rt.close()
        set_current(None)

"""The numpy term scorer (scoring.py) against Whoosh's own search: same pages, same order,
same scores, over several segments with deleted pages."""

from __future__ import annotations

import random

import pytest

from bingan_fulltext.backend import GRAMS, WhooshIndex, _term, _to_query
from bingan_fulltext.scoring import TermScorer

from bingan.core import cjk_text as analysis

WORDS = ["急性阑尾炎", "阑尾切除术", "高血压", "糖尿病", "慢性胃炎", "胆囊结石", "腹痛", "发热",
         "K35.8", "I10", "CT", "头孢曲松钠", "尾炎", "病情平稳", "复查血常规"]


def _page(rnd: random.Random) -> str:
    return "，".join(rnd.choice(WORDS) * rnd.randint(1, 2) for _ in range(rnd.randint(1, 25)))


@pytest.fixture
def ix(tmp_path):
    """An index of three segments (no merge) with replaced, hence deleted, pages."""
    rnd = random.Random(4)
    index = WhooshIndex(tmp_path / "index")
    index._index()
    page_id = 0
    for commit in range(3):
        w = index._writer()
        for adm in range(1, 41):
            if commit and rnd.random() < 0.5:
                continue
            w.delete_by_term("admission", str(adm))
            for seq in range(1, rnd.randint(2, 6)):
                page_id += 1
                uni, bi, tri, quad = analysis.index_tokens(_page(rnd), GRAMS)
                w.add_document(admission=str(adm), page=str(page_id), seq=seq, text="",
                               uni=uni, bi=bi, tri=tri, quad=quad)
        w.commit(merge=False)
    yield index
    index.close()


QUERIES = ["阑尾", "阑尾炎", "急性阑尾", "尾炎", "炎", "高血压 k35.8", "k35", "ct 腹痛", "胆囊 发热 i10",
           "血常规", "阑尾炎 糖尿病", "尾阑", "不存在", "慢性胃炎 病情平稳"]


def test_term_scorer_agrees_with_whoosh(ix):
    stats = ix.stats()
    assert stats["segments"] == 3 and stats["deleted"] > 0  # the cases the scorer must handle
    with ix._search_lock:
        s = ix._current_searcher()
        scorer = TermScorer(s)
        for q in QUERIES:
            clauses = analysis.parse_query(q)
            terms = [_term(c) for c in clauses]
            assert all(terms), q
            expected = [(h.score, h.docnum) for h in s.search(_to_query(clauses), limit=15)]
            got = scorer.top(terms, 15)
            assert [d for _, d in got] == [d for _, d in expected], q
            assert [sc for sc, _ in got] == pytest.approx([sc for sc, _ in expected], rel=1e-12)
            assert scorer.count(terms) == len(s.search(_to_query(clauses), limit=None)), q
        assert scorer.top([("bi", "阑尾")], 0) == []
    assert any(scorer.count([_term(c) for c in analysis.parse_query(q)]) > 15 for q in QUERIES)


def test_phrase_queries_still_use_whoosh(ix):
    # a Han run of 5+ characters has no single term: Whoosh's phrase search answers it
    (clause,) = analysis.parse_query("急性阑尾炎")
    assert _term(clause) is None
    hits = ix.search("急性阑尾炎", 1000, 0)
    assert hits and ix.count("急性阑尾炎") == len(hits)


def test_an_index_without_live_pages_answers_nothing(tmp_path):
    from bingan.core.fulltext import PageText

    index = WhooshIndex(tmp_path / "index")
    index.replace_admission(1, [])  # created, no page (Whoosh's idf is undefined there)
    assert index.search("阑尾", 10, 0) == [] and index.count("阑尾炎 k35") == 0
    index.replace_admission(1, [PageText(101, 1, "阑尾")])
    index.replace_admission(1, [])  # the one page is deleted, not yet merged away
    assert index.stats()["deleted"] == 1
    assert index.search("阑尾", 10, 0) == [] and index.count("阑尾") == 0
    index.close()


def test_skipping_blocks_changes_nothing(tmp_path, monkeypatch):
    """One segment of 1,500 pages (terms with a dozen posting blocks): the best-bound-first
    reading of one term and the covering blocks of an AND skip blocks, and still return what
    Whoosh returns."""
    from bingan_fulltext import scoring

    rnd = random.Random(7)
    index = WhooshIndex(tmp_path / "index")
    w = index._writer()
    for n in range(1500):
        # pages of about one length, as OCR pages are; a few mention a word many times, a
        # rare word is on a few pages close together (one block of postings)
        text = "，".join(rnd.choice(WORDS) for _ in range(20)) + "，穿孔"
        text += "，穿孔" * 9 if n % 300 == 7 else ""
        text += "，罕见病例" if n < 100 and n % 7 == 0 else ""
        uni, bi, tri, quad = analysis.index_tokens(text, GRAMS)
        w.add_document(admission=str(n // 10), page=str(n), seq=n % 10, text="", uni=uni,
                       bi=bi, tri=tri, quad=quad)
    w.commit()
    decoded = []
    real = scoring._Blocks._raw
    monkeypatch.setattr(scoring._Blocks, "_raw", lambda self, j: decoded.append(j) or real(self, j))
    with index._search_lock:
        s = index._current_searcher()
        scorer = TermScorer(s)
        for q in ["阑尾", "高血压", "炎", "穿孔", "罕见 阑尾", "罕见病例 穿孔", "k35.8 ct", "尾炎"]:
            clauses = analysis.parse_query(q)
            terms = [_term(c) for c in clauses]
            blocks = sum(len(scorer.blocks(0, s.reader(), f, t).pos) for f, t in terms)
            for k in (1, 5, 20, 300):
                decoded.clear()
                expected = [(h.score, h.docnum) for h in s.search(_to_query(clauses), limit=k)]
                got = scorer.top(terms, k)
                assert [d for _, d in got] == [d for _, d in expected], (q, k)
                assert [x for x, _ in got] == pytest.approx([x for x, _ in expected], rel=1e-12)
                if k == 5 and q in ("穿孔", "罕见 阑尾"):
                    # 穿孔: the 5 pages naming it ten times, then blocks whose bound is lower;
                    # 罕见 阑尾: the rare term's pages are all in the first block of 阑尾
                    assert blocks > 10 and len(decoded) <= 6, (q, len(decoded), blocks)
    index.close()

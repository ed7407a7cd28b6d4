"""The tests every full-text backend plugin must pass, written once (core.fulltext).

A backend's index tests subclass ``IndexContract``, name the index class and implement the
engine-specific steps; the class's fixtures are ``ix`` (an empty index in a temporary folder)
and ``put`` (indexes one admission through the hooks' checks). Its hook tests call the ``hook_*`` and
``cli_*`` functions with its runtime, service module and names.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
import time

import pytest
from click.testing import CliRunner

from bingan.core import cjk_text as analysis
from bingan.core import pages, records
from bingan.core.cli import Ctx, build_cli
from bingan.core.config import ConfigError, validate_settings
from bingan.core.fulltext import IndexBusy, PageText, check_pages, check_paging
from bingan.core.runtime import build_runtime, set_current
from fulltext_refs import admission, pages_of
from bingan.hooks.types import AdmissionFilter, AdmissionIn, FulltextHit, PatientIn
from support import make_config


def pids(hits):
    return sorted(h.page_id for h in hits)


class IndexContract:
    """The index through its module API: phrases, re-indexing, paging, restart, bad input."""

    # -- engine-specific steps ---------------------------------------------------------------
    def index_class(self) -> type:
        raise NotImplementedError

    def hold_writer_lock(self, ix):
        """Take the index's writer lock as another process would; return its release()."""
        raise NotImplementedError

    def create_foreign_index(self, path) -> None:
        """Create an index of the engine at ``path`` without this plugin (no bingan.json)."""
        raise NotImplementedError

    def check_optimized(self, before: dict, after: dict) -> None:
        assert after["pages"] == 7 and after["segments"] <= before["segments"]

    # -- fixtures ----------------------------------------------------------------------------
    @pytest.fixture
    def ix(self, tmp_path):
        index = self.index_class()(tmp_path / "index")
        yield index
        index.close()

    @pytest.fixture
    def put(self, ix):
        """put(adm_id, [text, ...]): index one admission through the checks the hook uses."""

        def _put(adm_id: int, texts: list[str | None]) -> int:
            return ix.replace_admission(adm_id, check_pages(admission(adm_id),
                                                            pages_of(adm_id, texts)))

        return _put

    # -- the tests ---------------------------------------------------------------------------
    def test_phrase_inside_a_longer_word(self, ix, put):
        put(1, ["入院诊断：急性阑尾炎。", "既往高血压病史十年。"])
        hits = ix.search("阑尾", 10, 0)
        assert pids(hits) == [101]
        assert hits[0].admission_id == 1 and hits[0].score > 0
        assert "«阑尾»炎" in hits[0].snippet
        assert pids(ix.search("阑尾炎", 10, 0)) == [101]
        assert pids(ix.search("急性阑尾炎", 10, 0)) == [101]

    def test_reordered_or_separated_characters_do_not_match(self, ix, put):
        put(1, ["急性阑尾炎"])
        put(2, ["尾阑相连"])
        put(3, ["阑，尾炎"])  # punctuation between: not the phrase
        put(4, ["急性阑\n尾 炎"])  # OCR line break and space inside the word: still the phrase
        assert pids(ix.search("尾阑", 10, 0)) == [201]
        assert pids(ix.search("阑尾", 10, 0)) == [101, 401]
        assert pids(ix.search("阑尾炎", 10, 0)) == [101, 401]
        assert pids(ix.search("炎尾阑", 10, 0)) == []
        # single characters match anywhere
        assert pids(ix.search("阑", 10, 0)) == [101, 201, 301, 401]

    def test_no_phrase_across_cjk_runs(self, ix, put):
        # the end of one CJK run and the start of the next (after punctuation, a word or a
        # run of two characters) never join into a phrase of any length
        put(1, ["阑尾，尾炎", "急性阑尾。尾炎症状", "慢性胆囊 k35 囊炎",
                "腹腔镜、镜阑、阑尾切除术"])
        put(2, ["诊断：急性阑尾炎（K35.8）", "肠梗阻、慢性胆囊炎"])
        for q in ["阑尾炎", "急性阑尾炎", "阑尾炎症", "急性阑尾炎症状", "胆囊炎", "慢性胆囊炎",
                  "腹腔镜阑尾", "镜阑尾切除术"]:
            assert [h.page_id for h in ix.search(q, 10, 0)] == \
                {"阑尾炎": [201], "急性阑尾炎": [201], "胆囊炎": [202],
                 "慢性胆囊炎": [202]}.get(q, []), q
        # a run inside a longer one is still found, alone and with other parts
        assert pids(ix.search("性阑尾炎", 10, 0)) == [201]
        assert pids(ix.search("阑尾炎 k35.8", 10, 0)) == [201]
        assert pids(ix.search("阑尾 尾炎", 10, 0)) == [101, 102, 201]  # two parts: each anywhere
        assert pids(ix.search("切除术 腹腔镜", 10, 0)) == [104]
        assert pids(ix.search("胆囊 k35", 10, 0)) == [103]
        assert ix.count("阑尾炎") == 1 and ix.count("急性阑尾") == 2
        hit = ix.search("急性阑尾炎", 10, 0)[0]
        assert "«急性阑尾炎»" in hit.snippet

    def test_multiple_pages_and_admissions_and_and(self, ix, put):
        put(1, ["主诉：腹痛2天", "诊断：急性阑尾炎", "手术：腹腔镜阑尾切除术"])
        put(2, ["诊断：2型糖尿病", "诊断：急性阑尾炎 高血压"])
        assert pids(ix.search("阑尾炎", 10, 0)) == [102, 202]
        assert pids(ix.search("阑尾", 10, 0)) == [102, 103, 202]
        assert pids(ix.search("阑尾炎 高血压", 10, 0)) == [202]  # every part must match
        assert {h.admission_id for h in ix.search("诊断", 10, 0)} == {1, 2}
        assert ix.count("诊断") == 3
        assert ix.count("阑尾炎 高血压") == 1 and ix.count("尾阑") == 0

    def test_reindex_replaces_old_text_for_a_searcher_already_open(self, ix, put):
        put(1, ["急性阑尾炎", "阑尾切除术后"])
        put(2, ["阑尾周围脓肿"])
        assert pids(ix.search("阑尾", 10, 0)) == [101, 102, 201]  # the searcher is now cached
        put(1, ["原发性高血压"])  # re-OCR: one page left, other words
        assert pids(ix.search("阑尾", 10, 0)) == [201]
        assert pids(ix.search("高血压", 10, 0)) == [101]
        assert ix.stats()["pages"] == 2
        put(1, [])  # no pages any more
        assert ix.search("高血压", 10, 0) == []
        assert ix.stats()["pages"] == 1

    def test_pages_without_text_are_left_out(self, ix, put):
        assert put(1, ["阑尾", None, "   "]) == 1
        assert ix.stats()["pages"] == 1

    def test_latin_words_and_icd_codes(self, ix, put):
        put(1, ["出院诊断：急性阑尾炎 K35.8；高血压 I10"])
        put(2, ["诊断：K35.9 其他急性阑尾炎；CT检查：右下腹渗出"])
        put(3, ["Acute appendicitis, perforated"])
        assert pids(ix.search("K35.8", 10, 0)) == [101]
        assert pids(ix.search("k35", 10, 0)) == [101, 201]  # the code's stem finds both
        assert pids(ix.search("Ｉ１０", 10, 0)) == [101]  # full-width query
        assert pids(ix.search("ct", 10, 0)) == [201]
        assert pids(ix.search("CT检查", 10, 0)) == [201]
        assert pids(ix.search('"acute appendicitis"', 10, 0)) == [301]
        assert pids(ix.search('"appendicitis acute"', 10, 0)) == []
        hit = ix.search("k35.8", 10, 0)[0]
        assert "«K35.8»" in hit.snippet

    @pytest.mark.parametrize("word", ["阑尾", "阑尾炎", "性阑尾炎", "急性阑尾炎"])
    def test_paging_and_score_order(self, ix, put, word):
        # page i (all pages as long) mentions the word i times: more mentions score higher
        # (2 characters are one bigram, 3 and 4 may be one n-gram, 5 a phrase: all rank so)
        put(1, ["急性阑尾炎。" * i + "其他内容多。" * (20 - i) for i in range(1, 21)])
        everything = ix.search(word, 20, 0)
        assert len(everything) == 20
        scores = [h.score for h in everything]
        assert scores == sorted(scores, reverse=True)
        assert everything[0].page_id == 120 and everything[-1].page_id == 101
        result_pages = [ix.search(word, 7, off) for off in (0, 7, 14)]
        assert [len(p) for p in result_pages] == [7, 7, 6]
        assert [h.page_id for p in result_pages for h in p] == [h.page_id for h in everything]
        # each hit of a later result page has the snippet of its own page
        for h in result_pages[2]:
            assert h.snippet.count(f"«{word}»") == h.page_id - 100
        assert ix.search(word, 5, 20) == []
        assert ix.count(word) == 20

    @pytest.mark.parametrize("word", ["阑尾", "急性阑尾炎", "appendicitis", '"acute appendicitis"'])
    def test_admission_filter_inside_the_query(self, ix, put, word):
        # five admissions, 4 pages each; the best-scoring pages belong to refused ones, so a
        # filter applied after the engine's top-k would return short or empty pages
        for adm in range(1, 6):
            put(adm, [("急性阑尾炎 acute appendicitis。" * (adm * 4 + i)
                       + "其他内容多。" * (30 - adm * 4 - i)) for i in range(4)])
        everything = ix.search(word, 100, 0)
        assert len(everything) == 20
        allowed = AdmissionFilter(frozenset({1, 2}))
        hits = ix.search(word, 100, 0, allowed)
        assert {h.admission_id for h in hits} == {1, 2} and len(hits) == 8
        # ranked as without the filter, the refused pages taken out
        assert [h.page_id for h in hits] == [h.page_id for h in everything
                                             if h.admission_id in (1, 2)]
        # paging counts permitted hits only: 3 + 3 + 2, nothing refused fills a page
        pages = [ix.search(word, 3, off, allowed) for off in (0, 3, 6)]
        assert [len(p) for p in pages] == [3, 3, 2]
        assert [h.page_id for p in pages for h in p] == [h.page_id for h in hits]
        assert ix.search(word, 3, 8, allowed) == []
        # every admission but two
        but = ix.search(word, 100, 0, AdmissionFilter(frozenset({4, 5}), exclude=True))
        assert {h.admission_id for h in but} == {1, 2, 3} and len(but) == 12
        assert [h.page_id for h in but] == [h.page_id for h in everything
                                            if h.admission_id in (1, 2, 3)]
        assert ix.search(word, 10, 0, AdmissionFilter(frozenset({99}))) == []
        assert ix.count(word, allowed) == 8
        assert ix.count(word, AdmissionFilter(frozenset({4, 5}), exclude=True)) == 12

    def test_restart_reopens_the_index_from_disk(self, put, ix):
        put(7, ["慢性胆囊炎 胆囊结石", "腹腔镜胆囊切除术"])
        ix.close()
        again = type(ix)(ix.path)
        assert pids(again.search("胆囊", 10, 0)) == [701, 702]
        again.close()

    def test_refuses_an_index_of_another_format(self, put, ix):
        put(1, ["阑尾"])
        ix.close()
        ix.marker.write_text('{"format": %d}' % (ix.FORMAT + 1))
        with pytest.raises(RuntimeError, match="格式"):
            type(ix)(ix.path).search("阑尾", 10, 0)
        # an index built by an earlier version (other positions, fewer fields): the operator
        # is told to rebuild it, and how
        ix.marker.write_text('{"format": %d}' % (ix.FORMAT - 1))
        with pytest.raises(RuntimeError) as err:
            type(ix)(ix.path).replace_admission(1, [])
        assert f"格式为 {ix.FORMAT - 1}" in str(err.value) and "重建" in str(err.value)
        assert "bingan pageindex reindex --all" in str(err.value)

    def test_bad_input_is_refused_and_stores_nothing(self, ix, put):
        put(1, ["急性阑尾炎"])
        foreign = pages_of(2, ["高血压"])
        with pytest.raises(ValueError, match="belongs to admission 2"):
            check_pages(admission(1), pages_of(1, ["新的文字"]) + foreign)
        with pytest.raises(TypeError, match="must be str"):
            check_pages(admission(1), pages_of(1, [b"\xe9\x98\x91"]))  # type: ignore[list-item]
        with pytest.raises(ValueError, match="at most"):
            check_pages(admission(1), pages_of(1, ["阑" * 100_001]))
        with pytest.raises(ValueError, match="twice"):
            check_pages(admission(1), pages_of(1, ["a"]) + pages_of(1, ["b"]))
        with pytest.raises(TypeError, match="PageRef"):
            check_pages(admission(1), [("not a page", "text")])
        with pytest.raises(TypeError, match="list"):
            check_pages(admission(1), "阑尾")  # type: ignore[arg-type]
        for limit, offset in ((0, 0), (1001, 0), (10, -1), (10, 100_001)):
            with pytest.raises(ValueError):
                check_paging(limit, offset)
        with pytest.raises(TypeError):
            check_paging("10", 0)  # type: ignore[arg-type]
        with pytest.raises(analysis.QueryError):
            ix.search("阑" * 300, 10, 0)
        assert pids(ix.search("阑尾", 10, 0)) == [101]
        assert ix.stats()["pages"] == 1

    def test_failed_write_leaves_the_index_as_it_was(self, ix, put):
        put(1, ["急性阑尾炎"])
        # the second page fails inside the open writer, after the delete and the first add
        with pytest.raises(TypeError):
            bad = PageText(102, 2, 12345)  # type: ignore[arg-type]
            ix.replace_admission(1, [PageText(101, 1, "高血压"), bad])
        assert pids(ix.search("阑尾", 10, 0)) == [101]
        assert ix.search("高血压", 10, 0) == []
        put(1, ["高血压"])  # the writer lock was released
        assert pids(ix.search("高血压", 10, 0)) == [101]

    def test_writer_waits_for_another_writer_then_gives_up(self, ix, put):
        put(1, ["阑尾"])
        release = self.hold_writer_lock(ix)
        ix.writer_timeout_s = 0.3
        with pytest.raises(IndexBusy, match="其他进程"):
            put(2, ["高血压"])
        release()
        put(2, ["高血压"])
        assert pids(ix.search("高血压", 10, 0)) == [201]

    def test_concurrent_writers_and_readers(self, ix, put):
        put(0, ["阑尾"])
        errors: list[BaseException] = []

        def write(adm_id):
            try:
                put(adm_id, [f"第{adm_id}份 急性阑尾炎", "高血压"])
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        def read():
            try:
                for _ in range(20):
                    for h in ix.search("阑尾炎", 50, 0):
                        assert "«阑尾炎»" in h.snippet
            except BaseException as exc:  # pragma: no cover
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(i,)) for i in range(1, 7)]
        threads += [threading.Thread(target=read) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert pids(ix.search("阑尾炎", 50, 0)) == [i * 100 + 1 for i in range(1, 7)]

    def test_stats_and_optimize(self, ix, put):
        assert ix.stats()["pages"] == 0
        for i in range(1, 5):
            put(i, ["阑尾", "高血压"])
        put(1, ["糖尿病"])
        before = ix.stats()
        assert before["pages"] == 7 and before["bytes"] > 0 and before["segments"] >= 1
        ix.optimize()
        self.check_optimized(before, ix.stats())
        assert pids(ix.search("糖尿病", 10, 0)) == [101]
        assert pids(ix.search("阑尾", 10, 0)) == [201, 301, 401]

    def test_a_commit_by_another_process_becomes_visible(self, ix, put):
        """Another process (a `bingan tasks run` worker) indexes; this process's reader sees
        it."""
        put(1, ["阑尾"])
        assert ix.search("胆囊", 10, 0) == []
        cls = type(ix)
        code = (
            "import sys; from pathlib import Path; from core.fulltext import PageText; "
            f"from {cls.__module__} import {cls.__name__} as Index; "
            "Index(Path(sys.argv[1])).replace_admission(9, [PageText(901, 1, '胆囊结石')])"
        )
        subprocess.run([sys.executable, "-c", code, str(ix.path)], check=True, timeout=120)
        deadline = time.monotonic() + 10
        while not ix.search("胆囊", 10, 0) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pids(ix.search("胆囊", 10, 0)) == [901]

    def test_refuses_an_index_it_did_not_create(self, ix, tmp_path):
        (tmp_path / "foreign").mkdir()
        self.create_foreign_index(tmp_path / "foreign")
        with pytest.raises(RuntimeError, match="bingan.json"):
            type(ix)(tmp_path / "foreign").replace_admission(1, [PageText(101, 1, "阑尾")])


# -- the hooks, the CLI and the settings, with only the backend's plugin enabled ------------
TEXTS = ["住院病案首页 出院诊断：急性阑尾炎（K35.8）",
         "手术记录：腹腔镜阑尾切除术，术中见阑尾充血水肿",
         "出院记录：患者恢复良好，予出院"]


def record_with_pages(rt, mrn: str, texts: list[str]):
    """A real admission with real pages; returns (AdmissionRef, [(PageRef, text)])."""
    with rt.sessions() as s, s.begin():
        adm, _ = records.upsert_admission(s, rt, AdmissionIn(
            patient=PatientIn(mrn=mrn, name="钱七"), admission_no=f"ZY2026{mrn}",
            visit_no=1, admitted_at=dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)))
        rows = [pages.add_page(s, rt, adm, pages.NewPage(image=b"\xff\xd8jpeg" + t.encode(),
                                                          original=b"orig" + t.encode()))
                for t in texts]
        s.flush()
        return records.to_ref(adm), [(pages.page_ref(p), t) for p, t in zip(rows, texts)]


def hook_index_record(rt, service, folder: str, mrn_prefix: str) -> None:
    """index_record through the hook: the index is created, re-indexing replaces, bad input
    of one admission stores nothing."""
    adm, page_texts = record_with_pages(rt, f"{mrn_prefix}00001", TEXTS)
    rt.pm.hook.index_record(rt=rt, admission=adm, pages=page_texts)
    assert (rt.home / "fulltext" / folder / "bingan.json").exists()
    ix = service.index_for(rt)
    hits = ix.search("阑尾", 10, 0)
    assert sorted(h.page_id for h in hits) == sorted(p.id for p, _ in page_texts[:2])
    assert all(h.admission_id == adm.id for h in hits)
    # after correction of page 2 the index has the new text only
    corrected = [page_texts[0], (page_texts[1][0], "手术记录：腹腔镜胆囊切除术"), page_texts[2]]
    rt.pm.hook.index_record(rt=rt, admission=adm, pages=corrected)
    assert [h.page_id for h in ix.search("阑尾", 10, 0)] == [page_texts[0][0].id]
    # a page of another admission: refused, nothing changes
    other, other_pages = record_with_pages(rt, f"{mrn_prefix}00002", ["高血压"])
    with pytest.raises(ValueError, match="belongs to admission"):
        rt.pm.hook.index_record(rt=rt, admission=adm, pages=[(page_texts[0][0], "糖尿病")]
                                + other_pages)
    assert ix.search("糖尿病", 10, 0) == []
    assert ix.stats()["pages"] == 3


def hook_search_fulltext(rt, tmp_path, mrn_prefix: str) -> None:
    """search_fulltext through the hook: the first result is the list, snippets are marked,
    paging works, bad paging is refused, a runtime without the plugin gets None."""
    assert rt.pm.hook.search_fulltext(rt=rt, query="阑尾", limit=10, offset=0,
                                      admissions=None) == []  # no index yet
    adm, page_texts = record_with_pages(rt, f"{mrn_prefix}00003", TEXTS)
    rt.pm.hook.index_record(rt=rt, admission=adm, pages=page_texts)
    hits = rt.pm.hook.search_fulltext(rt=rt, query="阑尾炎 K35.8", limit=10, offset=0,
                                      admissions=None)
    assert isinstance(hits, list) and len(hits) == 1  # first result: the list itself
    hit = hits[0]
    assert isinstance(hit, FulltextHit)
    assert (hit.admission_id, hit.page_id) == (adm.id, page_texts[0][0].id)
    assert "«阑尾炎»" in hit.snippet and "«K35.8»" in hit.snippet
    second = rt.pm.hook.search_fulltext(rt=rt, query="阑尾", limit=1, offset=1, admissions=None)
    first = rt.pm.hook.search_fulltext(rt=rt, query="阑尾", limit=1, offset=0, admissions=None)
    assert len(first) == len(second) == 1 and first[0].page_id != second[0].page_id
    with pytest.raises(ValueError, match="limit"):
        rt.pm.hook.search_fulltext(rt=rt, query="阑尾", limit=0, offset=0, admissions=None)
    # the admissions filter reaches the backend: a refused record's pages never come back
    only_other = AdmissionFilter(frozenset({adm.id + 1000}))
    assert rt.pm.hook.search_fulltext(rt=rt, query="阑尾", limit=10, offset=0,
                                      admissions=only_other) == []
    assert rt.pm.hook.search_fulltext(rt=rt, query="阑尾", limit=10, offset=0,
                                      admissions=AdmissionFilter(frozenset({adm.id}),
                                                                 exclude=True)) == []
    assert len(rt.pm.hook.search_fulltext(rt=rt, query="阑尾", limit=10, offset=0,
                                          admissions=AdmissionFilter(frozenset({adm.id})))) == 2
    with pytest.raises(TypeError, match="AdmissionFilter"):
        rt.pm.hook.search_fulltext(rt=rt, query="阑尾", limit=10, offset=0, admissions={adm.id})
    # with the plugin disabled nobody answers
    off = build_runtime(make_config(tmp_path / "home", f"sqlite:///{tmp_path}/off.db", []))
    try:
        assert off.pm.hook.search_fulltext(rt=off, query="阑尾", limit=10, offset=0,
                                            admissions=None) is None
    finally:
        off.close()
        set_current(rt)


def cli_stats_and_optimize(tmp_path, plugin: str, service, optimized_segments: int | None):
    """``bingan <plugin> stats|optimize``; ``optimized_segments``: the segment count an
    optimize leaves (None: the engine does not promise one)."""
    rt = build_runtime(make_config(tmp_path / "home", f"sqlite:///{tmp_path}/x.db",
                                   enabled=[plugin]))
    try:
        group = build_cli(rt)

        def run(*args):
            obj = Ctx()
            obj._rt = rt
            return CliRunner().invoke(group, list(args), obj=obj)

        res = run(plugin, "optimize")
        assert res.exit_code == 0 and "尚未建立" in res.output
        for i in (1, 2, 3):
            service.index_record(rt, admission(i), pages_of(i, ["阑尾炎", "高血压"]))
        res = run(plugin, "stats", "--json")
        assert res.exit_code == 0, res.output
        assert json.loads(res.output)["pages"] == 6
        res = run(plugin, "optimize")
        assert res.exit_code == 0 and "6 页" in res.output
        res = run(plugin, "stats")
        assert "已索引页数：6" in res.output and "段数：" in res.output
        if optimized_segments is not None:
            assert f"6 页，{optimized_segments} 段" in run(plugin, "optimize").output
            assert f"段数：{optimized_segments}" in res.output
    finally:
        service.close_all()
        rt.close()
        set_current(None)


def settings_are_validated_and_path_is_configurable(tmp_path, plugin: str, settings_cls,
                                                    service) -> None:
    with pytest.raises(ConfigError, match=rf"\[plugins.{plugin}\] snippet_chars"):
        validate_settings(f"plugins.{plugin}", settings_cls, {"snippet_chars": 5})
    with pytest.raises(ConfigError, match="colour"):
        validate_settings(f"plugins.{plugin}", settings_cls, {"colour": "red"})
    cfg = make_config(tmp_path / "home", f"sqlite:///{tmp_path}/x.db", enabled=[plugin])
    cfg.plugin_settings[plugin] = {"path": "idx/ft", "snippet_chars": 30}
    rt = build_runtime(cfg)
    try:
        assert service.index_path(rt) == tmp_path / "home" / "idx" / "ft"
        assert service.index_for(rt).snippet_chars == 30
    finally:
        service.close_all()
        rt.close()
        set_current(None)

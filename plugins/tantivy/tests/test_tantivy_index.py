"""The tantivy index through its module API: phrases, re-indexing, paging, restart, bad input."""

from __future__ import annotations

import threading

import pytest
import tantivy

from core import cjk_text as analysis
from bingan_tantivy.backend import FORMAT, IndexBusy, TantivyIndex
from bingan_tantivy.service import check_pages, check_paging
from tv_refs import admission, pages_of


def pids(hits):
    return sorted(h.page_id for h in hits)


def test_phrase_inside_a_longer_word(ix, put):
    put(1, ["入院诊断：急性阑尾炎。", "既往高血压病史十年。"])
    hits = ix.search("阑尾", 10, 0)
    assert pids(hits) == [101]
    assert hits[0].admission_id == 1 and hits[0].score > 0
    assert "«阑尾»炎" in hits[0].snippet
    assert pids(ix.search("阑尾炎", 10, 0)) == [101]
    assert pids(ix.search("急性阑尾炎", 10, 0)) == [101]


def test_reordered_or_separated_characters_do_not_match(ix, put):
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


def test_multiple_pages_and_admissions_and_and(ix, put):
    put(1, ["主诉：腹痛2天", "诊断：急性阑尾炎", "手术：腹腔镜阑尾切除术"])
    put(2, ["诊断：2型糖尿病", "诊断：急性阑尾炎 高血压"])
    assert pids(ix.search("阑尾炎", 10, 0)) == [102, 202]
    assert pids(ix.search("阑尾", 10, 0)) == [102, 103, 202]
    assert pids(ix.search("阑尾炎 高血压", 10, 0)) == [202]  # every part must match
    assert {h.admission_id for h in ix.search("诊断", 10, 0)} == {1, 2}
    assert ix.count("诊断") == 3


def test_reindex_replaces_old_text_for_a_searcher_already_open(ix, put):
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


def test_pages_without_text_are_left_out(ix, put):
    assert put(1, ["阑尾", None, "   "]) == 1
    assert ix.stats()["pages"] == 1


def test_latin_words_and_icd_codes(ix, put):
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


def test_paging_and_score_order(ix, put):
    # page i mentions 阑尾 i times: more mentions score higher
    put(1, ["阑尾。" * i + "其他内容。" * (20 - i) for i in range(1, 21)])
    everything = ix.search("阑尾", 20, 0)
    assert len(everything) == 20
    scores = [h.score for h in everything]
    assert scores == sorted(scores, reverse=True)
    assert everything[0].page_id == 120 and everything[-1].page_id == 101
    pages = [ix.search("阑尾", 7, off) for off in (0, 7, 14)]
    assert [len(p) for p in pages] == [7, 7, 6]
    assert [h.page_id for p in pages for h in p] == [h.page_id for h in everything]
    assert ix.search("阑尾", 5, 20) == []


def test_restart_reopens_the_index_from_disk(tmp_path, put, ix):
    put(7, ["慢性胆囊炎 胆囊结石", "腹腔镜胆囊切除术"])
    ix.close()
    again = TantivyIndex(tmp_path / "tantivy")
    assert pids(again.search("胆囊", 10, 0)) == [701, 702]
    again.close()


def test_refuses_an_index_of_another_format(tmp_path, put, ix):
    put(1, ["阑尾"])
    ix.close()
    (tmp_path / "tantivy" / "bingan.json").write_text('{"format": %d}' % (FORMAT + 1))
    with pytest.raises(RuntimeError, match="格式"):
        TantivyIndex(tmp_path / "tantivy").search("阑尾", 10, 0)


def test_bad_input_is_refused_and_stores_nothing(ix, put):
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


def test_failed_write_leaves_the_index_as_it_was(ix, put):
    from bingan_tantivy.backend import PageText

    put(1, ["急性阑尾炎"])
    # the second page fails inside the open writer, after the delete and the first add
    with pytest.raises(TypeError):
        bad = PageText(102, 2, 12345)  # type: ignore[arg-type]
        ix.replace_admission(1, [PageText(101, 1, "高血压"), bad])
    assert pids(ix.search("阑尾", 10, 0)) == [101]
    assert ix.search("高血压", 10, 0) == []
    put(1, ["高血压"])  # the writer lock was released
    assert pids(ix.search("高血压", 10, 0)) == [101]


def test_writer_waits_for_another_writer_then_gives_up(ix, put):
    put(1, ["阑尾"])
    other = tantivy.Index.open(str(ix.path)).writer(heap_size=15_000_000, num_threads=1)
    ix.writer_timeout_s = 0.3
    with pytest.raises(IndexBusy, match="其他进程"):
        put(2, ["高血压"])
    other.rollback()
    other.wait_merging_threads()  # releases the lock, as the other process ending would
    put(2, ["高血压"])
    assert pids(ix.search("高血压", 10, 0)) == [201]


def test_concurrent_writers_and_readers(ix, put):
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


def test_stats_and_optimize(ix, put):
    assert ix.stats()["pages"] == 0
    for i in range(1, 5):
        put(i, ["阑尾", "高血压"])
    put(1, ["糖尿病"])
    before = ix.stats()
    assert before["pages"] == 7 and before["bytes"] > 0 and before["segments"] >= 1
    ix.optimize()
    after = ix.stats()
    assert after["pages"] == 7 and after["segments"] <= before["segments"]
    assert pids(ix.search("糖尿病", 10, 0)) == [101]
    assert pids(ix.search("阑尾", 10, 0)) == [201, 301, 401]


def test_a_commit_by_another_process_becomes_visible(ix, put, tmp_path):
    """Another process (a `bingan tasks run` worker) indexes; this process's reader sees it."""
    import subprocess
    import sys
    import time

    put(1, ["阑尾"])
    assert ix.search("胆囊", 10, 0) == []
    code = (
        "import sys; from pathlib import Path; "
        "from bingan_tantivy.backend import TantivyIndex, PageText; "
        "TantivyIndex(Path(sys.argv[1])).replace_admission(9, [PageText(901, 1, '胆囊结石')])"
    )
    subprocess.run([sys.executable, "-c", code, str(ix.path)], check=True, timeout=120)
    deadline = time.monotonic() + 10
    while not ix.search("胆囊", 10, 0) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pids(ix.search("胆囊", 10, 0)) == [901]


def test_refuses_an_index_it_did_not_create(tmp_path):
    from bingan_tantivy.backend import PageText, schema

    (tmp_path / "foreign").mkdir()
    tantivy.Index(schema(), path=str(tmp_path / "foreign"))
    with pytest.raises(RuntimeError, match="bingan.json"):
        TantivyIndex(tmp_path / "foreign").replace_admission(1, [PageText(101, 1, "阑尾")])

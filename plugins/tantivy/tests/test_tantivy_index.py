"""The tantivy index through its module API: the shared contract (tests/fulltext_contract.py)
with tantivy's own writer lock and index creation."""

from __future__ import annotations

import tantivy

from fulltext_contract import IndexContract


class TestTantivyIndex(IndexContract):
    def index_class(self):
        from bingan_tantivy.backend import TantivyIndex

        return TantivyIndex

    def hold_writer_lock(self, ix):
        other = tantivy.Index.open(str(ix.path)).writer(heap_size=15_000_000, num_threads=1)

        def release():
            other.rollback()
            other.wait_merging_threads()  # releases the lock, as the other process ending would

        return release

    def create_foreign_index(self, path) -> None:
        from bingan_tantivy.backend import schema

        tantivy.Index(schema(), path=str(path))


def test_three_and_four_characters_are_one_ngram_term(tmp_path):
    """A 3- or 4-character run is asked as one term of tri/quad: it matches the pages that
    have the run, not two CJK runs that only join across punctuation, as bigram phrases do
    (阑尾，尾炎 has the bigrams 阑尾 尾炎 at consecutive positions)."""
    from bingan_tantivy.backend import PageText, TantivyIndex

    ix = TantivyIndex(tmp_path / "tantivy")
    try:
        ix.replace_many([(1, [PageText(101, 1, "阑尾，尾炎"), PageText(102, 1, "急性阑尾炎")]),
                         (2, [PageText(201, 1, "性阑尾，尾炎症"), PageText(202, 1, "性阑尾炎症")])])
        assert sorted(h.page_id for h in ix.search("阑尾炎", 10, 0)) == [102, 202]
        assert sorted(h.page_id for h in ix.search("性阑尾炎", 10, 0)) == [102, 202]
        assert [h.page_id for h in ix.search("阑尾炎症", 10, 0)] == [202]
        assert ix.count("尾炎") == 4 and ix.count("阑尾炎") == 2
    finally:
        ix.close()

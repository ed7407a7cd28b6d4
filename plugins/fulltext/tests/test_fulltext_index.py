"""The Whoosh index through its module API: the shared contract (tests/fulltext_contract.py)
with Whoosh's own writer lock, index creation and full merge."""

from __future__ import annotations

from whoosh import index as windex

from fulltext_contract import IndexContract


class TestWhooshIndex(IndexContract):
    def index_class(self):
        from bingan_fulltext.backend import WhooshIndex

        return WhooshIndex

    def hold_writer_lock(self, ix):
        other = windex.open_dir(str(ix.path)).writer()  # as another process would hold it
        return other.cancel

    def create_foreign_index(self, path) -> None:
        from bingan_fulltext.backend import schema

        windex.create_in(str(path), schema())

    def check_optimized(self, before: dict, after: dict) -> None:
        # Whoosh merges everything into one segment and drops the deleted documents
        assert after["segments"] == 1 and after["pages"] == 7 and after["deleted"] == 0


def test_gap_is_not_indexed_but_keeps_its_position(tmp_path):
    from bingan_fulltext.backend import WhooshIndex

    from bingan.core import cjk_text
    from bingan.core.fulltext import PageText

    ix = WhooshIndex(tmp_path / "index")
    ix.replace_admission(1, [PageText(101, 1, "阑尾，尾炎")])
    with ix._index().reader() as r:
        terms = {t.decode() if isinstance(t, bytes) else t for t in r.lexicon("bi")}
        assert terms == {"阑尾", "尾炎"} and cjk_text.GAP not in terms
        assert r.postings("bi", "阑尾").value_as("positions") == [0]
        assert r.postings("bi", "尾炎").value_as("positions") == [2]  # GAP took position 1
    ix.close()

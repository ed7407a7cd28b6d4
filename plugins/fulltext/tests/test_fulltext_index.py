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

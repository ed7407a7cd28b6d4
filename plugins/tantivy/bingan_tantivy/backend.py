"""The tantivy index: one document per page, replaced per admission, searched by clauses.

Documents: ``admission`` and ``page`` (integers, indexed for deletes, stored), ``seq``
(stored), ``text`` (the page text as stored UTF-8 bytes, for snippets; a bytes field because
tantivy-py cannot declare a stored-only text field), ``uni`` (frequencies only), ``bi``
(with positions; analysis.GAP between CJK runs is indexed as a term no query asks for, its
position keeps phrases inside one run), ``tri`` and ``quad`` (Han 3- and 4-grams, frequencies
only): the token strings of analysis.index_tokens, split by tantivy's built-in ``whitespace``
tokenizer, so nothing custom has to be registered when the index is opened.

Queries: a Han run of 1 or 2 characters is a term of ``uni`` or ``bi``, of 3 or 4 characters
a term of ``tri`` or ``quad``, a longer one the phrase of its bigrams; words are terms of
``uni`` (phrases of ``bi`` in quotes). Each hit fetches one stored document, and its snippet
is built from it (only the ``limit`` hits returned).

Concurrency: one writer at a time. Inside a process a lock serialises writers; across
processes tantivy's writer lock file does: a writer retries for up to ``writer_timeout_s``.
Each write opens a writer, commits once (readers see all of an admission's pages or none),
and releases the lock by waiting for its merge threads. tantivy searchers are thread-safe
snapshots; after our own commit the reader is reloaded at once, commits by other processes
are picked up by tantivy's reload-on-commit watcher (well under a second).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterable

import tantivy

from bingan.hooks.types import AdmissionFilter, FulltextHit

from bingan.core import cjk_text as analysis
from bingan.core.fulltext import MAX_PAGE_CHARS, IndexBusy, PageIndex, PageText  # noqa: F401 - API

# bump when the schema or analysis changes; an older index must be rebuilt. Format 2: fields
# tri and quad; format 3: analysis.GAP between CJK runs in ``bi`` (no phrase across them).
FORMAT = 3
# Han n-grams indexed as terms (fields tri, quad): a query run of 3 or 4 characters is one
# term, which tantivy ranks with block-max WAND, instead of a phrase of bigrams, which it must
# check in every matching page (format 1: p95 CPU 16 ms at 1,000,000 pages, README).
GRAMS = (3, 4)
GRAM_FIELDS = {3: "tri", 4: "quad"}


def _nothing(admissions: AdmissionFilter | None) -> bool:
    return admissions is not None and not admissions.exclude and not admissions.ids


def schema() -> tantivy.Schema:
    sb = tantivy.SchemaBuilder()
    sb.add_integer_field("admission", stored=True, indexed=True)
    sb.add_integer_field("page", stored=True, indexed=True)
    sb.add_integer_field("seq", stored=True)
    sb.add_bytes_field("text", stored=True)
    sb.add_text_field("uni", tokenizer_name="whitespace", index_option="freq")
    sb.add_text_field("bi", tokenizer_name="whitespace", index_option="position")
    for n in GRAMS:
        sb.add_text_field(GRAM_FIELDS[n], tokenizer_name="whitespace", index_option="freq")
    return sb.build()


class TantivyIndex(PageIndex):
    """The page index at ``path`` (created on first use)."""

    ENGINE = "tantivy"
    FORMAT = FORMAT

    def __init__(self, path: Path, *, snippet_chars: int = 100, writer_timeout_s: float = 30.0,
                 writer_heap_mb: int = 64, writer_threads: int = 1) -> None:
        super().__init__(path, snippet_chars=snippet_chars, writer_timeout_s=writer_timeout_s)
        self.writer_heap_mb = writer_heap_mb
        self.writer_threads = writer_threads
        self._write_lock = threading.Lock()
        self._open_lock = threading.Lock()

    # -- opening --------------------------------------------------------------------------
    def _foreign_index_here(self) -> bool:
        return self.path.is_dir() and tantivy.Index.exists(str(self.path))

    def _index(self) -> tantivy.Index:
        with self._open_lock:
            if self._ix is None:
                self._check_or_create_marker()
                # opens the index, or creates it (new, or the marker was written just before
                # a crash); tantivy writes meta.json atomically
                self._ix = tantivy.Index(schema(), path=str(self.path), reuse=True)
            return self._ix

    # -- writing --------------------------------------------------------------------------
    def _writer(self, heap_mb: int | None = None, threads: int | None = None):
        ix = self._index()
        threads = threads or self.writer_threads
        heap = (heap_mb or self.writer_heap_mb) * 1_000_000 * threads

        def try_open():
            try:
                return ix.writer(heap_size=heap, num_threads=threads)
            except ValueError as exc:
                if "LockBusy" not in str(exc):
                    raise
                return None

        return self._wait_for_writer(try_open)

    def replace_many(self, batch: Iterable[tuple[int, list[PageText]]], *,
                     heap_mb: int | None = None, threads: int | None = None) -> int:
        """Replace the pages of several admissions in one commit; return the number of page
        documents written. Readers see all of it or none. ``heap_mb``/``threads`` override
        the settings for a bulk load (tantivy needs at least 15 MB per thread)."""
        with self._write_lock:
            w = self._writer(heap_mb, threads)
            try:
                added = 0
                for admission_id, pages in batch:
                    w.delete_documents_by_term("admission", admission_id)
                    for p in pages:
                        uni, bi, *longer = analysis.index_tokens(p.text, GRAMS)
                        doc = tantivy.Document()
                        doc.add_integer("admission", admission_id)
                        doc.add_integer("page", p.page_id)
                        doc.add_integer("seq", p.seq)
                        doc.add_bytes("text", p.text.encode("utf-8"))
                        doc.add_text("uni", uni)
                        doc.add_text("bi", bi)
                        for n, tokens in zip(GRAMS, longer):
                            doc.add_text(GRAM_FIELDS[n], tokens)
                        w.add_document(doc)
                        added += 1
                w.commit()
            except BaseException:
                w.rollback()
                raise
            finally:
                w.wait_merging_threads()  # also releases the writer lock
            self._index().reload()
        return added

    def optimize(self) -> None:
        """Let pending merges finish and delete files no commit uses any more. (tantivy-py
        exposes no forced merge; tantivy's merge policy merges segments as commits add
        them.)"""
        with self._write_lock:
            w = self._writer()
            try:
                w.garbage_collect_files()
            finally:
                w.wait_merging_threads()
            self._index().reload()

    # -- searching ------------------------------------------------------------------------
    def _query(self, clauses: list[analysis.Clause],
               admissions: AdmissionFilter | None = None) -> tantivy.Query:
        """The clauses as one query; with ``admissions`` the filter is a clause of it (a term
        set on the indexed ``admission`` field, required or excluded), so tantivy's top-k and
        count see permitted pages only."""
        sch = self._index().schema
        parts = []
        for c in clauses:
            if len(c.run) in GRAM_FIELDS:  # a Han run of 3 or 4 characters: one n-gram
                parts.append(tantivy.Query.term_query(sch, GRAM_FIELDS[len(c.run)], c.run,
                                                      index_option="freq"))
            elif c.kind == "term":
                parts.append(tantivy.Query.term_query(sch, c.field, c.tokens[0],
                                                      index_option="freq"))
            else:
                parts.append(tantivy.Query.phrase_query(sch, c.field, list(c.tokens)))
        occurs = [(tantivy.Occur.Must, q) for q in parts]
        if admissions is not None and not admissions.everything:
            ids = tantivy.Query.term_set_query(sch, "admission", sorted(admissions.ids))
            # a filter scores nothing: wrapped in a constant score of 0, BM25 stays as it was
            ids = tantivy.Query.const_score_query(ids, 0.0)
            occurs.append((tantivy.Occur.MustNot if admissions.exclude else tantivy.Occur.Must,
                           ids))
        if len(occurs) == 1:
            return occurs[0][1]
        return tantivy.Query.boolean_query(occurs)

    def search(self, query: str, limit: int = 20, offset: int = 0,
               admissions: AdmissionFilter | None = None) -> list[FulltextHit]:
        """Pages matching every clause of ``query``, best first, ``limit`` from ``offset``;
        only pages of the admissions ``admissions`` allows."""
        clauses = analysis.parse_query(query)
        if not clauses or not self.exists() or _nothing(admissions):
            return []
        searcher = self._index().searcher()
        result = searcher.search(self._query(clauses, admissions), limit=limit, count=False,
                                 offset=offset)
        hits = []
        for score, address in result.hits:
            doc = searcher.doc(address)
            hits.append(self.hit(doc.get_first("admission"), doc.get_first("page"), score,
                                 doc.get_first("text").decode("utf-8"), clauses))
        return hits

    def count(self, query: str, admissions: AdmissionFilter | None = None) -> int:
        """How many pages match ``query`` (all of them, not one result page)."""
        clauses = analysis.parse_query(query)
        if not clauses or not self.exists() or _nothing(admissions):
            return 0
        return self._index().searcher().search(self._query(clauses, admissions), limit=1,
                                               count=True).count

    # -- housekeeping ---------------------------------------------------------------------
    def stats(self) -> dict:
        """Live page documents, segments, bytes on disk."""
        out = {"engine": "tantivy", "path": str(self.path), "pages": 0, "segments": 0,
               "bytes": self.disk_bytes()}
        if self.exists():
            s = self._index().searcher()
            out.update(pages=s.num_docs, segments=s.num_segments)
        return out

    def close(self) -> None:
        with self._open_lock:
            self._ix = None  # tantivy frees the index when the last reference goes

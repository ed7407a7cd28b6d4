"""The Whoosh index: one document per page, replaced per admission, searched by clauses.

Documents: ``admission`` and ``page`` (ids as strings, indexed for deletes), ``seq`` and
``text`` (stored, for ordering and snippets), ``uni`` (no positions), ``bi`` (positions),
``tri`` and ``quad`` (Han 3- and 4-grams, no positions): token strings from
analysis.index_tokens, split on spaces by Whoosh's own SpaceSeparatedTokenizer, so the pickled
schema names only Whoosh classes. ``bi`` drops analysis.GAP with Whoosh's StopFilter without
renumbering: the filler is not indexed, the position it took stays empty, so no phrase spans
two CJK runs.

Queries: a Han run of 1 or 2 characters is a term of ``uni`` or ``bi``, of 3 or 4 characters a
term of ``tri`` or ``quad`` (no phrase to check page by page), a longer one the phrase of its
bigrams; words are terms of ``uni`` (phrases of ``bi`` in quotes).

Concurrency: one writer at a time. Inside a process a lock serialises writers; across
processes Whoosh's lock file does, and a writer waits up to ``writer_timeout_s`` for it.
Searches share one searcher that is reopened when the index generation changes (a commit here
or in another process). Whoosh is pure Python and holds the GIL, so searches are serialised
by a lock at no cost in throughput; that also keeps the shared searcher single-threaded.
The searcher is reopened, never ``Searcher.refresh()``-ed: in whoosh3 3.54.0 (and
whoosh-reloaded) ``refresh()`` returns a searcher that still shows documents deleted by the
commit (README, "Choosing the Whoosh package").
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Iterable

import numpy as np
from whoosh import index as windex
from whoosh.analysis import SpaceSeparatedTokenizer, StopFilter
from whoosh.columns import NumericColumn
from whoosh.fields import COLUMN, ID, STORED, TEXT, Schema
from whoosh.index import EmptyIndexError, LockError
from whoosh.query import And, Phrase, Term

from bingan.hooks.types import AdmissionFilter, FulltextHit

from bingan.core import cjk_text as analysis
from bingan.core.fulltext import MAX_PAGE_CHARS, IndexBusy, PageIndex, PageText  # noqa: F401 - API

from .scoring import ADMISSION_COLUMN, TermScorer

# bump when the schema or analysis changes; an older index must be rebuilt. Format 2: GAP
# between CJK runs in ``bi`` (no phrase across punctuation), fields ``tri`` and ``quad``;
# format 3: the ``adm`` column (admission id per page) that access filters read.
FORMAT = 3
# Han n-grams indexed as terms, as the tantivy backend does: a query run of 3 or 4 characters
# is one term instead of a phrase of bigrams, which Whoosh checks in Python in every page that
# has all its bigrams (README, "Benchmark").
GRAMS = (3, 4)
GRAM_FIELDS = {3: "tri", 4: "quad"}


def schema() -> Schema:
    return Schema(
        admission=ID(stored=True),
        page=ID(stored=True, unique=True),
        # the admission id of every page as a column (8 bytes a page, read as one array):
        # the filter of the records a user may read (scoring.TermScorer.keep_masks)
        **{ADMISSION_COLUMN: COLUMN(NumericColumn("q"))},
        seq=STORED,
        text=STORED,
        uni=TEXT(analyzer=SpaceSeparatedTokenizer(), phrase=False),
        bi=TEXT(analyzer=SpaceSeparatedTokenizer()
                | StopFilter(stoplist=[analysis.GAP], minsize=1, maxsize=None, renumber=False),
                phrase=True),
        tri=TEXT(analyzer=SpaceSeparatedTokenizer(), phrase=False),
        quad=TEXT(analyzer=SpaceSeparatedTokenizer(), phrase=False),
    )


def _term(c: analysis.Clause) -> tuple[str, str] | None:
    """The one term (field, text) that asks clause ``c``, or None for a phrase."""
    if len(c.run) in GRAM_FIELDS:  # a Han run of 3 or 4 characters: one n-gram
        return GRAM_FIELDS[len(c.run)], c.run
    return (c.field, c.tokens[0]) if c.kind == "term" else None


def _to_query(clauses: list[analysis.Clause]):
    parts = []
    for c in clauses:
        t = _term(c)
        parts.append(Term(*t) if t else Phrase(c.field, list(c.tokens)))
    return parts[0] if len(parts) == 1 else And(parts)


class WhooshIndex(PageIndex):
    """The page index at ``path`` (created on first use)."""

    ENGINE = "whoosh"
    FORMAT = FORMAT

    def __init__(self, path: Path, *, snippet_chars: int = 100, writer_timeout_s: float = 30.0,
                 writer_memory_mb: int = 128) -> None:
        super().__init__(path, snippet_chars=snippet_chars, writer_timeout_s=writer_timeout_s)
        self.writer_memory_mb = writer_memory_mb
        self._write_lock = threading.Lock()
        self._search_lock = threading.Lock()
        self._open_lock = threading.Lock()
        self._searcher = None
        self._searcher_gen = -1
        self._scorer: TermScorer | None = None  # of the current searcher

    # -- opening --------------------------------------------------------------------------
    def _index(self):
        with self._open_lock:
            if self._ix is None:
                self._ix = self._open_or_create()
            return self._ix

    def _foreign_index_here(self) -> bool:
        return windex.exists_in(str(self.path))

    def _open_or_create(self):
        self._check_or_create_marker()
        for attempt in range(20):
            try:
                return windex.open_dir(str(self.path))
            except EmptyIndexError:  # new, or the marker was written just before a crash
                return windex.create_in(str(self.path), schema())
            except FileNotFoundError:  # a commit elsewhere replaced the TOC just now
                if attempt == 19:
                    raise
                time.sleep(0.05)

    # -- writing --------------------------------------------------------------------------
    def _writer(self):
        ix = self._index()

        def try_open():
            try:
                return ix.writer(limitmb=self.writer_memory_mb)
            except LockError:
                return None

        return self._wait_for_writer(try_open)

    def replace_many(self, batch: Iterable[tuple[int, list[PageText]]]) -> int:
        """Replace the pages of several admissions in one commit (each admission once);
        return the number of page documents written. Readers see all of it or none."""
        items = dict(batch)  # an admission listed twice: the last list wins
        with self._write_lock:
            w = self._writer()
            try:
                added = 0
                for admission_id, pages in items.items():
                    w.delete_by_term("admission", str(admission_id))
                    for p in pages:
                        uni, bi, tri, quad = analysis.index_tokens(p.text, GRAMS)
                        w.add_document(admission=str(admission_id), page=str(p.page_id),
                                       seq=p.seq, text=p.text, uni=uni, bi=bi, tri=tri,
                                       quad=quad, **{ADMISSION_COLUMN: admission_id})
                        added += 1
                w.commit()
            except BaseException:
                try:
                    w.cancel()  # releases the lock; may fail again after a failed commit
                except Exception:  # noqa: BLE001 - the first error is the one to report
                    pass
                raise
        return added

    def optimize(self) -> None:
        """Merge all segments into one (faster searches; takes a while on a big index)."""
        with self._write_lock:
            w = self._writer()
            w.commit(optimize=True)

    # -- searching ------------------------------------------------------------------------
    def _current_searcher(self):
        ix = self._index()  # called under the search lock
        gen = ix.latest_generation()
        if self._searcher is None or gen != self._searcher_gen:
            old = self._searcher
            self._searcher = ix.searcher()
            self._searcher_gen = gen
            self._scorer = TermScorer(self._searcher)
            if old is not None:
                old.close()
        return self._searcher

    def _whoosh_filter(self, keep) -> dict:
        """``keep_masks`` as Whoosh's ``filter`` (the allowed documents, when fewer) or
        ``mask`` (the refused ones) argument of ``Searcher.search``."""
        if keep is None:
            return {}
        bases = [base for _r, base in self._scorer.leaves]
        allowed = sum(int(k.sum()) for k in keep)
        total = sum(len(k) for k in keep)
        if not allowed:
            return {"filter": {-1}}  # an empty set would mean "no filter" to Whoosh
        if allowed <= total - allowed:
            return {"filter": {int(d) + b for k, b in zip(keep, bases) for d in np.nonzero(k)[0]}}
        return {"mask": {int(d) + b for k, b in zip(keep, bases) for d in np.nonzero(~k)[0]}}

    def search(self, query: str, limit: int = 20, offset: int = 0,
               admissions: AdmissionFilter | None = None) -> list[FulltextHit]:
        """Pages matching every clause of ``query``, best first, ``limit`` from ``offset``;
        only pages of the admissions ``admissions`` allows (dropped while the postings are
        read, so a page of hits holds ``limit`` permitted pages).

        Terms only (every clause but Han runs of 5+ characters and quoted word phrases): the
        numpy scorer (scoring.py); with a phrase: Whoosh's search. Both rank by BM25F."""
        clauses = analysis.parse_query(query)
        if not clauses or not self.exists():
            return []
        terms = [_term(c) for c in clauses]
        with self._search_lock:
            s = self._current_searcher()
            keep = self._scorer.keep_masks(admissions)
            if all(terms):
                top = self._scorer.top(terms, offset + limit, keep)[offset:]
            else:
                results = s.search(_to_query(clauses), limit=offset + limit,
                                   **self._whoosh_filter(keep))
                top = [(hit.score, hit.docnum) for hit in results[offset:offset + limit]]
            hits = []
            for score, docnum in top:
                stored = s.stored_fields(docnum)
                hits.append(self.hit(int(stored["admission"]), int(stored["page"]), score,
                                     stored["text"], clauses))
        return hits

    def count(self, query: str, admissions: AdmissionFilter | None = None) -> int:
        """How many pages match ``query`` (all of them, not one result page)."""
        clauses = analysis.parse_query(query)
        if not clauses or not self.exists():
            return 0
        terms = [_term(c) for c in clauses]
        with self._search_lock:
            s = self._current_searcher()
            keep = self._scorer.keep_masks(admissions)
            if all(terms):
                return self._scorer.count(terms, keep)
            return len(s.search(_to_query(clauses), limit=None, **self._whoosh_filter(keep)))

    # -- housekeeping ---------------------------------------------------------------------
    def stats(self) -> dict:
        """Live page documents, deleted ones not yet merged away, segments, bytes on disk."""
        out = {"engine": "whoosh", "path": str(self.path), "pages": 0, "deleted": 0,
               "segments": 0, "bytes": self.disk_bytes()}
        if self.exists():
            ix = self._index()
            with ix.reader() as r:
                out.update(pages=r.doc_count(), deleted=r.doc_count_all() - r.doc_count(),
                           segments=len(ix._segments()))
        return out

    def close(self) -> None:
        with self._search_lock, self._open_lock:
            if self._searcher is not None:
                self._searcher.close()
                self._searcher = None
                self._scorer = None
            if self._ix is not None:
                self._ix.close()
                self._ix = None

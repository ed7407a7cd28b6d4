"""Term queries scored in numpy, a posting block at a time, instead of Whoosh's collector.

Whoosh finds the top hits by scoring every matching page in Python (a matcher step, a field
length lookup and a BM25F call per page, about 20 µs each): a term in 5,000 of 20,000 pages
cost 100 ms. After the n-gram fields (backend.GRAMS) almost every query is terms only, one per
clause, all of which must match. For those, ``TermScorer.top`` reads each term's postings a
block at a time (Whoosh's own block reader gives a block's document numbers and frequencies),
drops deleted pages, intersects the terms' pages, computes Whoosh's BM25F scores (same
formula, defaults, idf and average field length) with numpy, and sorts as Whoosh's
TopCollector does (score descending, then lower document number first). Blocks are skipped
where that cannot change the answer: in an AND, the rarest term is read whole and of the
others only the blocks whose document range holds one of its pages; for one term, blocks are
read best bound first (a block header has its highest frequency and shortest page) until the
bound is below the k-th best score. ``plugins/fulltext/tests/test_fulltext_scoring.py``
checks pages, order and scores against Whoosh's own search, and that blocks are skipped.
Phrase clauses (Han runs of 5 or more characters, quoted word phrases) still go through
Whoosh's searcher.

It reads a few attributes of whoosh3's codec that are not public API (the block data of the
leaf matcher and the field-length column), which is why whoosh3 is pinned exactly; an upgrade
must pass that test.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from whoosh.codec.whoosh3 import LENGTHS_COLUMN, _lenfield
from whoosh.matching.wrappers import FilterMatcher
from whoosh.reading import TermNotFound
from whoosh.scoring import BM25F
from whoosh.util.numeric import byte_to_length

# Whoosh stores a field's length per document as one byte; this is its decoding table.
_BYTE_TO_LENGTH = np.array([byte_to_length(b) for b in range(256)], dtype=np.float64)
_DEFAULT = BM25F()  # the searcher's default weighting: B and K1 come from it
B, K1 = _DEFAULT.B, _DEFAULT.K1

Postings = tuple[np.ndarray, np.ndarray]
ADMISSION_COLUMN = "adm"  # backend.schema(): the admission id of each page as a column  # document numbers (ascending), frequencies


class _Blocks:
    """One term's postings in one segment: the block headers (last document number, highest
    frequency, shortest page of each block) read at once, a block's data decoded on demand
    with Whoosh's own reader, deleted pages dropped."""

    def __init__(self, m: Any, deleted: np.ndarray | None,
                 keep: np.ndarray | None = None) -> None:
        self.m = m
        self.deleted = deleted
        self.keep = keep  # bool per document of the segment: pages the caller may see
        self.inline: Postings | None = None
        if hasattr(m, "_read_data") and hasattr(m, "_goto"):  # whoosh3 block reader
            pos, maxid, maxw, minlen, n = [], [], [], [], []
            p = m._baseoffset
            while m.is_active():
                pos.append(p)
                maxid.append(m._maxid)
                maxw.append(m._maxweight)
                minlen.append(m._minlength)
                n.append(m._blocklength)
                p = m._nextoffset
                m._next_block()
            self.pos = pos
            self.maxid = np.array(maxid, dtype=np.int64)
            self.maxweight = np.array(maxw, dtype=np.float64)
            self.minlength = np.array(minlen, dtype=np.float64)
            self.postings = int(sum(n))
        else:  # postings inlined in the term info (rare terms): a few, read one by one
            pairs = []
            while m.is_active():
                pairs.append((m.id(), m.weight()))
                m.next()
            ids = np.array([p[0] for p in pairs], dtype=np.int64)
            tf = np.array([p[1] for p in pairs], dtype=np.float64)
            self.inline = (ids, tf)
            self.pos = [0] if pairs else []
            self.maxid = ids[-1:] if pairs else np.zeros(0, dtype=np.int64)
            self.maxweight = np.array([tf.max()]) if pairs else np.zeros(0)
            self.minlength = np.zeros(len(self.pos))  # unknown: 0 keeps the bound an upper one
            self.postings = len(pairs)

    def _live(self, ids: np.ndarray, tf: np.ndarray) -> Postings:
        if self.deleted is not None:
            keep = ~np.isin(ids, self.deleted, assume_unique=True)
            ids, tf = ids[keep], tf[keep]
        if self.keep is not None:
            keep = self.keep[ids]
            ids, tf = ids[keep], tf[keep]
        return ids, tf

    def _raw(self, j: int) -> Postings:
        if self.inline is not None:
            return self.inline
        m = self.m
        m._goto(self.pos[j])
        m._read_data()
        deltas, weights = m._data[0], m._data[1]
        n = m._blocklength
        ids = np.cumsum(np.fromiter(deltas, dtype=np.int64, count=n))
        if weights is None:
            tf = np.ones(n)
        elif isinstance(weights, float):
            tf = np.full(n, weights)
        else:
            tf = np.asarray(weights, dtype=np.float64)
        return ids, tf

    def decode(self, j: int) -> Postings:
        """The live pages of block ``j`` and the term's frequency there."""
        return self._live(*self._raw(j))

    def _decode_many(self, blocks) -> Postings:
        parts = [self._raw(j) for j in blocks]
        if not parts:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        return self._live(np.concatenate([p[0] for p in parts]),
                          np.concatenate([p[1] for p in parts]))

    def decode_all(self) -> Postings:
        return self._decode_many(range(len(self.pos)))

    def decode_covering(self, docs: np.ndarray) -> Postings:
        """The live pages of the blocks whose document range holds one of ``docs`` (sorted):
        a superset of the term's pages among ``docs``."""
        lower = np.concatenate(([-1], self.maxid[:-1]))  # a block holds (lower, maxid]
        first = np.searchsorted(docs, lower, side="right")
        last = np.searchsorted(docs, self.maxid, side="right")
        return self._decode_many(np.nonzero(last > first)[0])


class TermScorer:
    """BM25F top hits of an AND of terms over one open Whoosh searcher (and its segments).

    Keep one per searcher: it caches each segment's field lengths (one byte per page and
    field, read once)."""

    def __init__(self, searcher: Any) -> None:
        if not isinstance(searcher.weighting, BM25F) or searcher.weighting._field_B:
            raise ValueError("TermScorer reproduces BM25F with one B for every field")
        self.searcher = searcher
        self.leaves = searcher.reader().leaf_readers()
        self._lengths: dict[tuple[int, str], np.ndarray] = {}
        self._deleted: dict[int, np.ndarray | None] = {}
        self._term_stats: dict[tuple[str, str], tuple[float, float]] = {}
        self._admissions: dict[int, np.ndarray] = {}
        self.live = searcher.doc_count()  # pages not deleted

    # -- per segment --------------------------------------------------------------------------
    def _field_lengths(self, i: int, reader: Any, field: str) -> np.ndarray:
        key = (i, field)
        out = self._lengths.get(key)
        if out is None:
            raw = np.zeros(reader.doc_count_all(), dtype=np.uint8)
            col = reader._perdoc._cached_reader(_lenfield(field), LENGTHS_COLUMN)
            if col is not None and col._count:
                n = min(col._count, len(raw))
                raw[:n] = np.frombuffer(col._dbfile.get(col._basepos, n), dtype=np.uint8)
            out = self._lengths[key] = _BYTE_TO_LENGTH[raw]
        return out

    def admissions(self, i: int, reader: Any) -> np.ndarray:
        """The admission id of every document of segment ``i`` (the ``adm`` column, read once
        per searcher: 8 bytes a page)."""
        out = self._admissions.get(i)
        if out is None:
            n = reader.doc_count_all()
            out = np.zeros(n, dtype=np.int64)
            col = reader.column_reader(ADMISSION_COLUMN, translate=False)
            count = min(getattr(col, "_count", 0), n)
            if count:
                out[:count] = np.frombuffer(col._dbfile.get(col._basepos, count * 8),
                                            dtype=">i8")
            self._admissions[i] = out
        return out

    def keep_masks(self, admissions: Any) -> list[np.ndarray] | None:
        """Per segment, which documents belong to an admission ``admissions`` (an
        AdmissionFilter) allows; None: every document."""
        if admissions is None or admissions.everything:
            return None
        ids = np.fromiter(admissions.ids, dtype=np.int64, count=len(admissions.ids))
        return [np.isin(self.admissions(i, reader), ids, invert=admissions.exclude)
                for i, (reader, _base) in enumerate(self.leaves)]

    def _deleted_docs(self, i: int, reader: Any) -> np.ndarray | None:
        if i not in self._deleted:
            gone = reader.deleted_docs_set
            self._deleted[i] = np.fromiter(sorted(gone), dtype=np.int64) if gone else None
        return self._deleted[i]

    def blocks(self, i: int, reader: Any, field: str, text: str,
               keep: list[np.ndarray] | None = None) -> _Blocks | None:
        """The postings of ``text`` in ``field`` in segment ``i``, block headers read; None
        when the segment has no such term. ``keep`` (``keep_masks``) drops refused pages."""
        try:
            m = reader.postings(field, text)
        except (TermNotFound, KeyError):
            return None
        if isinstance(m, FilterMatcher):  # deleted documents: filtered in numpy
            m = m.child
        return _Blocks(m, self._deleted_docs(i, reader), None if keep is None else keep[i])

    # -- the query ----------------------------------------------------------------------------
    def _stats(self, field: str, text: str) -> tuple[float, float]:
        # idf and average length, constant for the searcher (undefined without live pages)
        key = (field, text)
        if key not in self._term_stats:
            s = self.searcher
            self._term_stats[key] = (s.idf(field, text), s.avg_field_length(field) or 1)
        return self._term_stats[key]

    def _scores(self, i: int, reader: Any, field: str, text: str, ids: np.ndarray,
                tf: np.ndarray) -> np.ndarray:
        """Whoosh's BM25F score (bm25 in whoosh.scoring, the same operations in float64)."""
        idf, avgfl = self._stats(field, text)
        fl = self._field_lengths(i, reader, field)[ids]
        return idf * ((tf * (K1 + 1)) / (tf + K1 * ((1 - B) + B * fl / avgfl)))

    def matches(self, terms: list[tuple[str, str]],
                keep: list[np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Document numbers (of the searcher) of the pages that have every term, and their
        BM25F scores (the sum over the terms in query order, as Whoosh's And scores).

        The term with the fewest postings is read whole; of each other term only the blocks
        whose document range holds a page still in the running are decoded."""
        all_docs, all_scores = [], []
        if not self.live:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        for i, (reader, base) in enumerate(self.leaves):
            found = [self.blocks(i, reader, f, t, keep) for f, t in terms]
            if any(b is None for b in found):
                continue
            order = sorted(range(len(terms)), key=lambda j: found[j].postings)
            docs: np.ndarray | None = None
            per_term: dict[int, np.ndarray] = {}
            for j in order:
                if docs is None:
                    ids, tf = found[j].decode_all()
                else:
                    ids, tf = found[j].decode_covering(docs)
                    docs, a, b = np.intersect1d(docs, ids, assume_unique=True,
                                                return_indices=True)
                    per_term = {t: sc[a] for t, sc in per_term.items()}
                    ids, tf = ids[b], tf[b]
                if docs is None:
                    docs = ids
                if not len(docs):
                    break
                per_term[j] = self._scores(i, reader, *terms[j], ids, tf)
            if docs is not None and len(docs):
                total = per_term[0]
                for j in range(1, len(terms)):
                    total = total + per_term[j]
                all_docs.append(docs + base)
                all_scores.append(total)
        if not all_docs:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        return np.concatenate(all_docs), np.concatenate(all_scores)

    def _top_one_term(self, field: str, text: str, k: int,
                      keep: list[np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Candidates for the ``k`` best pages of one term: blocks are decoded best bound
        first (the BM25F score of the block's highest frequency at its shortest page) and no
        more once a block's bound is below the k-th best score found."""
        heads: list[tuple[float, int, int]] = []  # (bound, leaf, block)
        found = {}
        if not self.live:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        for i, (reader, _base) in enumerate(self.leaves):
            b = self.blocks(i, reader, field, text, keep)
            if b is None or not len(b.pos):
                continue
            found[i] = b
            idf, avgfl = self._stats(field, text)
            bound = idf * ((b.maxweight * (K1 + 1))
                           / (b.maxweight + K1 * ((1 - B) + B * b.minlength / avgfl)))
            heads += [(float(x), i, j) for j, x in enumerate(bound)]
        heads.sort(key=lambda h: -h[0])
        # the best pages so far: every page scoring at least the k-th best score (ties kept)
        docs, scores, kth = np.zeros(0, dtype=np.int64), np.zeros(0), -np.inf
        for bound, i, j in heads:
            if bound * (1 + 1e-9) < kth:
                break  # no page of this block or a later one can enter the top k
            ids, tf = found[i].decode(j)
            if not len(ids):
                continue
            reader, base = self.leaves[i]
            docs = np.concatenate((docs, ids + base))
            scores = np.concatenate((scores, self._scores(i, reader, field, text, ids, tf)))
            if len(scores) >= k:
                kth = np.partition(scores, len(scores) - k)[len(scores) - k]
                keep = scores >= kth
                docs, scores = docs[keep], scores[keep]
        return docs, scores

    def top(self, terms: list[tuple[str, str]], k: int,
            keep: list[np.ndarray] | None = None) -> list[tuple[float, int]]:
        """The ``k`` best (score, document number), best first; ties: lower number first.
        With ``keep`` (``keep_masks``) only the pages it keeps take part."""
        if k <= 0:
            return []
        if len(terms) == 1:
            docs, scores = self._top_one_term(*terms[0], k, keep)
        else:
            docs, scores = self.matches(terms, keep)
        if len(docs) > k:
            # every page scoring at least the k-th best score, ties included, then sort those
            kth = np.partition(scores, len(scores) - k)[len(scores) - k]
            keep = scores >= kth
            docs, scores = docs[keep], scores[keep]
        order = np.lexsort((docs, -scores))[:k]
        return [(float(scores[j]), int(docs[j])) for j in order]

    def count(self, terms: list[tuple[str, str]], keep: list[np.ndarray] | None = None) -> int:
        return len(self.matches(terms, keep)[0])

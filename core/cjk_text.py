"""Chinese-aware text analysis shared by indexing, querying and snippets.

In core because every full-text backend (plugins fulltext and tantivy) must agree on what
matches and plugins may not import each other (tests/test_fulltext_backends_agree.py checks
the backends through the hooks).

Text is NFKC-normalised (full-width Ｋ３５ becomes K35) and lowercased, then split into runs:

* a CJK run is consecutive Han characters; whitespace between two Han characters is ignored
  (OCR puts spaces and line breaks inside Chinese words), any other character ends the run;
* a word is a run of other letters/digits, joined by ``. - / +`` inside (``k35.8``,
  ``2024-03-05``, ``co2``), at most MAX_WORD characters (longer ones are dropped as OCR noise).

Two token streams are indexed, each a space-separated string the engine splits on whitespace
(so no custom analyzer class has to be importable by the engine or pickled into its schema):

* ``uni`` (no positions): every Han character, every word, and the parts of a joined word
  (``k35.8`` also gives ``k35`` and ``8``), for one-character and single-word queries;
* ``bi`` (with positions): every Han bigram of each CJK run and every word, in text order, so
  a Chinese phrase is the phrase of its bigrams: 阑尾 is the term 阑尾, which is found inside
  阑尾炎 (jieba would have made 阑尾炎 one word and missed it); 阑尾炎 is the phrase 阑尾 尾炎,
  which 尾阑 or 阑 尾 炎 separated by punctuation do not match. Between two CJK runs the
  stream has the token GAP, which takes a position and is never a query token, so no phrase
  spans a run boundary: 阑尾，尾炎 gives 阑尾 GAP 尾炎 and is not the phrase 阑尾 尾炎. Words
  stay adjacent across spaces and punctuation (a quoted word phrase matches ``acute,
  appendicitis``, as its snippet pattern does), but not across Han characters or a dropped
  overlong word, where GAP is put too. A backend may drop GAP at indexing if its engine keeps
  the position it took (Whoosh: StopFilter without renumbering); one that indexes it as a term
  loses nothing, no query asks for it.

Queries: whitespace separates parts, all of which must match (AND); ``"..."`` (also “...”)
keeps a part together, so ``"急性 阑尾炎"`` is one phrase and ``"acute appendicitis"`` a word
phrase. Inside a part each CJK run must occur as an exact phrase and each word must occur;
that a Han run and a word are adjacent (``CT检查``) is not checked, only that both occur.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from operator import add

# Unified ideographs, extension A, compatibility ideographs, extensions B-I.
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef\U00030000-\U000323af"
MAX_WORD = 64  # characters; longer letter/digit runs are OCR noise, dropped like tantivy does
MAX_QUERY = 256  # characters
MAX_CLAUSES = 32
# The position filler between CJK runs in the ``bi`` stream (index format: changing it, or
# where it is put, means every backend's index must be rebuilt). Not a letter, digit or Han
# character, so no query clause has it as a token.
GAP = "|"

# Marks around a matched phrase in snippets. Plain text: the UI escapes HTML, then turns the
# marks into <mark>. The same characters in page text are replaced by ‹ › so marks stay unique.
MARK_START = "«"
MARK_END = "»"

_HAN_GAP = re.compile(rf"(?<=[{_HAN}])\s+(?=[{_HAN}])")
_RUN = re.compile(rf"([{_HAN}]+)|([^\W_{_HAN}]+(?:[.\-/+][^\W_{_HAN}]+)*)")
_PART_SPLIT = re.compile(r"[.\-/+]")
_QUOTED = re.compile(r'"([^"]*)"?|(\S+)')
_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "＂": '"', "「": '"', "」": '"'})
_SPACE = re.compile(r"\s+")


class QueryError(ValueError):
    """A full-text query that cannot be run (too long, too many parts)."""


def normalize(text: str) -> str:
    """NFKC, lowercase, and no whitespace between two Han characters."""
    return _HAN_GAP.sub("", unicodedata.normalize("NFKC", text).lower())


def _runs(normalized: str) -> list[tuple[bool, str]]:
    """(is_han, run) in text order; overlong words are dropped."""
    out = []
    for m in _RUN.finditer(normalized):
        han, word = m.group(1), m.group(2)
        if han:
            out.append((True, han))
        elif len(word) <= MAX_WORD:
            out.append((False, word))
    return out


def index_tokens(text: str, grams: tuple[int, ...] = ()) -> tuple[str, ...]:
    """The ``uni`` and ``bi`` token strings of one page's text (see the module docstring),
    then for each size in ``grams`` (say (3, 4)) the Han n-grams of that size of every CJK run,
    in text order: a backend that indexes them asks a query run of that length as one term
    (``Clause.run``) instead of a phrase of bigrams."""
    uni: list[str] = []
    bi: list[str] = []
    longer: list[list[str]] = [[] for _ in grams]
    last = ""  # kind of the last token put in bi: "han" (a bigram) or "word"
    broken = False  # a Han character or a dropped word since the last word
    for han, word in _RUN.findall(normalize(text)):
        if han:
            uni.append(" ".join(han))
            if len(han) > 1:
                if last == "han":  # the previous CJK run: no phrase may span the boundary
                    bi.append(GAP)
                bi.append(" ".join(map(add, han, han[1:])))
                last = "han"
                for n, out in zip(grams, longer):
                    if len(han) >= n:
                        out.append(" ".join([han[i:i + n] for i in range(len(han) - n + 1)]))
            else:
                broken = True
        elif len(word) <= MAX_WORD:
            uni.append(word)
            if last == "word" and broken:
                bi.append(GAP)
            bi.append(word)
            last, broken = "word", False
            if not word.isalnum():
                uni.extend(p for p in _PART_SPLIT.split(word) if p)
        else:
            broken = True
    return (" ".join(uni), " ".join(bi), *(" ".join(out) for out in longer))


@dataclass(frozen=True)
class Clause:
    """One condition of a query: ``term`` on a field, or ``phrase`` (consecutive positions).

    ``pattern`` finds the same text in a page (NFKC, whitespace collapsed) for the snippet.
    ``run`` is the Han run of a Han clause ("" for words): a backend that indexes Han n-grams
    of its length (index_tokens ``grams``) asks it as one term instead of the phrase of its
    bigrams; both match the same pages (GAP keeps phrases inside one CJK run), the term is
    cheaper.
    """

    kind: str  # "term" | "phrase"
    field: str  # "uni" | "bi"
    tokens: tuple[str, ...]
    pattern: str
    run: str = ""


def _han_clause(run: str) -> Clause:
    pattern = r"\s*".join(re.escape(c) for c in run)
    if len(run) == 1:
        return Clause("term", "uni", (run,), pattern, run)
    grams = tuple(map(add, run, run[1:]))
    if len(grams) == 1:
        return Clause("term", "bi", grams, pattern, run)
    return Clause("phrase", "bi", grams, pattern, run)


# Word boundaries for snippet marks. ASCII only: a class with large Unicode ranges takes
# milliseconds to compile, once per query; words in records are Latin letters and digits.
_WORD_CHAR = "[0-9a-z]"


def _word_pattern(word: str) -> str:
    return rf"(?<!{_WORD_CHAR}){re.escape(word)}(?!{_WORD_CHAR})"


def _word_clause(words: list[str]) -> Clause:
    if len(words) == 1:
        return Clause("term", "uni", (words[0],), _word_pattern(words[0]))
    pattern = r"[\W_]+".join(re.escape(w) for w in words)
    pattern = rf"(?<!{_WORD_CHAR}){pattern}(?!{_WORD_CHAR})"
    return Clause("phrase", "bi", tuple(words), pattern)


def parse_query(query: str) -> list[Clause]:
    """The clauses of a user's query, all of which must match; [] when nothing is searchable.

    Raises QueryError when the query is longer than MAX_QUERY characters or has more than
    MAX_CLAUSES parts.
    """
    if not isinstance(query, str):
        raise QueryError(f"全文检索词必须是文本，收到 {type(query).__name__}")
    if len(query) > MAX_QUERY:
        raise QueryError(f"全文检索词过长（{len(query)} 字，最多 {MAX_QUERY} 字）")
    text = unicodedata.normalize("NFKC", query.translate(_QUOTES)).lower()
    clauses: list[Clause] = []
    for m in _QUOTED.finditer(text):
        quoted, bare = m.group(1), m.group(2)
        part = _HAN_GAP.sub("", quoted if quoted is not None else bare)
        words: list[str] = []
        for is_han, run in _runs(part):
            if is_han:
                if words:
                    clauses.append(_word_clause(words))
                    words = []
                clauses.append(_han_clause(run))
            elif quoted is not None:
                words.append(run)  # consecutive words of a quoted part form a phrase
            else:
                clauses.append(_word_clause([run]))
        if words:
            clauses.append(_word_clause(words))
    unique = list(dict.fromkeys(clauses))
    if len(unique) > MAX_CLAUSES:
        raise QueryError(f"全文检索词太多（{len(unique)} 个，最多 {MAX_CLAUSES} 个）")
    return unique


# Full-width letters, digits and word joiners (Ｋ３５．８) to ASCII, one character for one, so
# offsets found in the folded text are offsets in the text shown. Full-width punctuation (，：)
# is left alone: no pattern needs it.
_FOLD = {cp: cp - 0xFEE0 for cp in [*range(0xFF10, 0xFF1A), *range(0xFF21, 0xFF3B),
                                    *range(0xFF41, 0xFF5B), 0xFF0B, 0xFF0D, 0xFF0E, 0xFF0F]}
_WIDE = re.compile("[\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]")


def display_text(text: str) -> str:
    """Page text as snippets show it: whitespace collapsed, mark characters replaced by ‹ ›."""
    t = _SPACE.sub(" ", text).strip()
    return t.replace(MARK_START, "‹").replace(MARK_END, "›")


def _cut(t: str, width: int) -> str:
    return t[:width] + ("…" if len(t) > width else "")


def _fold(t: str) -> str:
    """What snippet patterns (all lowercase) are matched against, offset for offset."""
    folded = (t.translate(_FOLD) if _WIDE.search(t) else t).lower()
    return folded if len(folded) == len(t) else t  # İ lowercases to two characters


def snippet(text: str, clauses: list[Clause], width: int = 100) -> str:
    """About ``width`` characters of the page text around the first match of any clause, each
    match inside wrapped in MARK_START/MARK_END, with … where the page text goes on.

    The page's own characters are kept (full-width punctuation stays); matching folds
    full-width letters and digits and case, as indexing does.
    """
    if not clauses:
        return _cut(display_text(text), width)
    finder = re.compile("|".join(f"(?:{c.pattern})" for c in clauses))
    first = finder.search(_fold(text))
    if first is None:  # only for compatibility characters NFKC expands (①, ㎡); rare
        return _cut(display_text(text), width)
    # Work on a slice around the first match only: pages can be long, snippets are short.
    lo = max(0, first.start() - width)
    hi = min(len(text), first.end() + 2 * width)
    t = display_text(text[lo:hi])
    folded = _fold(t)
    first = finder.search(folded)
    if first is None:  # pragma: no cover - the slice holds the match
        return _cut(t, width)
    start = max(0, first.start() - width // 3)
    end = max(min(len(t), start + width), first.end())
    if end - start < width:
        start = max(0, end - width)
    out = ["…" if start > 0 or lo > 0 else ""]
    pos = start
    for m in finder.finditer(folded, start, end):
        if m.end() > m.start():
            out += [t[pos:m.start()], MARK_START, t[m.start():m.end()], MARK_END]
            pos = m.end()
    out += [t[pos:end], "…" if end < len(t) or hi < len(text) else ""]
    return "".join(out)


def _cell(c: str) -> int:
    """How wide a character is drawn, in half-width cells (Han and full-width forms: 2)."""
    return 2 if unicodedata.east_asian_width(c) in "WF" else 1


def text_boxes(lines: Sequence[tuple[str, tuple[int, int, int, int]]],
               query: str) -> list[tuple[int, int, int, int]]:
    """Where the parts of ``query`` occur on a page, from its OCR lines ``(text, (x1, y1, x2,
    y2))`` in reading order: one box per matched piece of a line, in the lines' pixels.

    Matching is the snippet's (same clauses, folding and patterns), over the lines joined by
    line breaks, so a Chinese phrase that wraps to the next line is found and gets a box on
    each line. OCR gives a box per line, not per character: a piece's left and right edges are
    placed by the width of the characters before it in the line (Han and full-width forms
    count double), which is where a printed line puts them. Raises QueryError as parse_query.
    """
    clauses = parse_query(query)
    if not clauses or not lines:
        return []
    finder = re.compile("|".join(f"(?:{c.pattern})" for c in clauses))
    starts, pos = [], 0
    for text, _ in lines:
        starts.append(pos)
        pos += len(text) + 1
    joined = "\n".join(text for text, _ in lines)
    out: list[tuple[int, int, int, int]] = []
    for m in finder.finditer(_fold(joined)):
        for (text, (x1, y1, x2, y2)), s0 in zip(lines, starts):
            a, b = max(m.start(), s0) - s0, min(m.end(), s0 + len(text)) - s0
            while a < b and text[a].isspace():
                a += 1
            while b > a and text[b - 1].isspace():
                b -= 1
            if a >= b:
                continue
            cells = [_cell(c) for c in text]
            total = sum(cells)
            left = x1 + (x2 - x1) * sum(cells[:a]) / total
            right = x1 + (x2 - x1) * sum(cells[:b]) / total
            out.append((math.floor(left), y1, math.ceil(right), y2))
    return out

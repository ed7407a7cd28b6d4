"""Page type from the title band: fuzzy matching of the printed title against configured types.

Most forms print their title at the top, so the lines whose top lies in the title band (the top
``title_band`` of the page) are matched against every type's name and aliases. A title found
exactly scores 1; an OCR error scores by edit distance (rapidfuzz's partial ratio, so
"出院记灵" still points to 出院记录 but with less confidence). The title line is usually the
tallest text in the band, so a match on a smaller line counts a little less. When another type
also matches nearly as well, the confidence drops by the overlap, so an ambiguous title goes to
a clerk. A type whose matching alias is part of the winner's ("知情同意书" in "手术知情同意书")
is no rival: the longer, more specific title explains it.

A page without any title evidence (continuation pages of a long progress note, blank pages)
gets ``PageClass(other_type, 0.0)``; the record-level pass (service.finalize) lets such a page
inherit the type of the page before it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from bingan.hooks.types import PageClass, TextBlock

_DROP = re.compile(r"[^\w]|_", re.UNICODE)


def norm(text: str) -> str:
    """NFKC, no whitespace or punctuation (so （治疗） and (治疗) and 治疗 all match)."""
    return _DROP.sub("", unicodedata.normalize("NFKC", text)).upper()


@dataclass(frozen=True)
class BandLine:
    text: str
    height: int
    top: int


def band_lines(blocks: list[TextBlock], page_height: float, band: float) -> list[BandLine]:
    """Lines (blocks on one row merged left to right) whose top lies in the title band.

    Merging rejoins letter-spaced titles ("出  院  记  录") that the detector split."""
    limit = page_height * band
    inband = sorted((b for b in blocks if b.box[1] < limit), key=lambda b: (b.box[1], b.box[0]))
    rows: list[list[TextBlock]] = []
    for b in inband:
        cy = (b.box[1] + b.box[3]) / 2
        for row in rows:
            r = row[0]
            if r.box[1] <= cy <= r.box[3]:
                row.append(b)
                break
        else:
            rows.append([b])
    out = []
    for row in rows:
        row.sort(key=lambda b: b.box[0])
        text = norm("".join(b.text for b in row))
        if text:
            out.append(BandLine(text, max(b.box[3] - b.box[1] for b in row),
                                min(b.box[1] for b in row)))
    return out


def _similarity(alias: str, line: str) -> float:
    """1.0 when the alias is in the line; else the best alignment of the alias on the line
    (a line shorter than the alias counts the alias's missing characters as errors, so
    "首次病程记录" is not a near miss of "术后首次病程记录")."""
    if alias in line:
        return 1.0
    from rapidfuzz import fuzz
    from rapidfuzz.distance import Levenshtein

    if len(line) < len(alias):
        return Levenshtein.normalized_similarity(alias, line)
    # the window of the line that aligns best, scored by edit distance over the alias
    al = fuzz.partial_ratio_alignment(alias, line)
    window = line[al.dest_start:al.dest_end]
    return max(0.0, 1.0 - Levenshtein.distance(alias, window) / len(alias))


@dataclass(frozen=True)
class Match:
    page_type: str
    score: float
    alias: str
    line: str


def rank(lines: list[BandLine], types: dict[str, list[str]]) -> list[Match]:
    """Best match of every type over the band lines, best first."""
    if not lines:
        return []
    tallest = max(ln.height for ln in lines) or 1
    out = []
    for name, aliases in types.items():
        best: Match | None = None
        for alias in {norm(a) for a in [name, *aliases]} - {""}:
            for ln in lines:
                prominence = ln.height / tallest
                score = _similarity(alias, ln.text) * (0.85 + 0.15 * prominence)
                if best is None or (score, len(alias)) > (best.score, len(best.alias)):
                    best = Match(name, score, alias, ln.text)
        if best is not None:
            out.append(best)
    out.sort(key=lambda m: (m.score, len(m.alias)), reverse=True)
    return out


MIN_EVIDENCE = 0.5  # below this the band holds no title of any configured type


def classify(blocks: list[TextBlock], page_height: float | None, types: dict[str, list[str]],
             *, other_type: str, band: float = 0.15) -> PageClass:
    """Page type and confidence (0..1) from the title band; ``PageClass(other_type, 0.0)``
    when the band shows no title."""
    if not blocks:
        return PageClass(other_type, 0.0)
    if not page_height:
        # unknown page size: the text rarely reaches the bottom margin
        page_height = max(b.box[3] for b in blocks) * 1.08
    ranked = rank(band_lines(blocks, page_height, band), types)
    if not ranked or ranked[0].score < MIN_EVIDENCE:
        return PageClass(other_type, 0.0)
    best = ranked[0]
    rivals = [m for m in ranked[1:] if m.alias not in best.alias]
    second = rivals[0].score if rivals else 0.0
    confidence = best.score - max(0.0, second - (best.score - 0.3))
    return PageClass(best.page_type, round(max(0.0, min(1.0, confidence)), 3))

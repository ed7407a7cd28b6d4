"""Identifiers as clerks type them: MRNs (病案号), admission numbers (住院号), staff numbers (工号).

People type ``zy2024020025`` for ``ZY2024020025``, ``200025`` for the MRN ``00200025``,
``d0001`` for ``D0001``, full-width digits from a Chinese input method, or paste a number with
spaces around it. Every box that takes one of these numbers passes it through here before
looking it up, so the same record is found however it was typed.
"""

from __future__ import annotations

import re
import unicodedata

MAX_WIDTH = 20  # no MRN in any hospital system we know is longer


def clean(text: str | None) -> str:
    """Full-width to half-width (NFKC), no whitespace anywhere, upper case."""
    if not text:
        return ""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(text))).upper()


def staff_no(text: str | None) -> str:
    """A typed staff number as stored (``d0001`` -> ``D0001``)."""
    return clean(text)


def admission_no(text: str | None) -> str:
    """A typed admission number as stored (``zy2024020025`` -> ``ZY2024020025``)."""
    return clean(text)


def mrn_candidates(text: str | None, pattern: str | None = None) -> list[str]:
    """The MRNs a typed one may mean, the typed form first.

    A clerk often drops leading zeros (``200025`` for ``00200025``): a number of digits also
    stands for itself zero-padded to every width that ``pattern`` (the hospital's
    ``mrn_pattern``) accepts, or to every width up to ``MAX_WIDTH`` without a pattern."""
    typed = clean(text)
    if not typed:
        return []
    out = [typed]
    if typed.isdigit():
        rx = re.compile(pattern) if pattern else None
        bare = typed.lstrip("0") or "0"
        for width in range(len(bare), MAX_WIDTH + 1):
            cand = bare.zfill(width)
            if cand not in out and (rx is None or rx.search(cand)):
                out.append(cand)
    return out


def mrn_candidates_rt(rt, text: str | None) -> list[str]:
    """``mrn_candidates`` with the hospital's configured ``mrn_pattern``."""
    return mrn_candidates(text, rt.config.core.mrn_pattern)

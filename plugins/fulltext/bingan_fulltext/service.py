"""What the hooks do: check the input, find this runtime's index, call it."""

from __future__ import annotations

import threading
from pathlib import Path

from core.runtime import Runtime, current
from hooks.types import AdmissionRef, FulltextHit, PageRef

from .backend import MAX_PAGE_CHARS, PageText, WhooshIndex

MAX_LIMIT = 1000
MAX_OFFSET = 100_000

_indexes: dict[Path, WhooshIndex] = {}
_lock = threading.Lock()


def index_path(rt: Runtime) -> Path:
    configured = rt.settings("fulltext").path
    if not configured:
        return rt.home / "fulltext" / "whoosh"
    p = Path(configured)
    return p if p.is_absolute() else rt.home / p


def index_for(rt: Runtime | None = None) -> WhooshIndex:
    """The (process-wide, shared) index of ``rt`` (default: the current runtime)."""
    rt = rt or current()
    s = rt.settings("fulltext")
    path = index_path(rt)
    with _lock:
        ix = _indexes.get(path)
        if ix is None:
            ix = _indexes[path] = WhooshIndex(path)
        ix.snippet_chars = s.snippet_chars
        ix.writer_timeout_s = s.writer_timeout_s
        ix.writer_memory_mb = s.writer_memory_mb
        return ix


def close_all() -> None:
    """Close every open index (tests; a process exits without it)."""
    with _lock:
        for ix in _indexes.values():
            ix.close()
        _indexes.clear()


def check_pages(admission: AdmissionRef, pages: list[tuple[PageRef, str]]) -> list[PageText]:
    """The pages to index, or ValueError/TypeError naming the first bad one (nothing is
    written then). Pages without text (None or blank) are left out of the index."""
    if not isinstance(admission, AdmissionRef):
        raise TypeError(f"index_record: admission must be an AdmissionRef, got "
                        f"{type(admission).__name__}")
    if not isinstance(pages, (list, tuple)):
        raise TypeError(f"index_record: pages must be a list of (PageRef, text), got "
                        f"{type(pages).__name__}")
    out: list[PageText] = []
    seen: set[int] = set()
    for i, item in enumerate(pages):
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], PageRef)):
            raise TypeError(f"index_record: pages[{i}] is not a (PageRef, text) pair")
        page, text = item
        if page.admission_id != admission.id:
            raise ValueError(f"index_record: page {page.id} belongs to admission "
                             f"{page.admission_id}, not {admission.id}")
        if page.id in seen:
            raise ValueError(f"index_record: page {page.id} is listed twice")
        seen.add(page.id)
        if text is None:
            continue
        if not isinstance(text, str):
            raise TypeError(f"index_record: text of page {page.id} must be str, got "
                            f"{type(text).__name__}")
        if len(text) > MAX_PAGE_CHARS:
            raise ValueError(f"index_record: text of page {page.id} has {len(text)} characters "
                             f"(at most {MAX_PAGE_CHARS})")
        if text.strip():
            out.append(PageText(page.id, page.seq, text))
    return out


def check_paging(limit: int, offset: int) -> None:
    for name, value, top in (("limit", limit, MAX_LIMIT), ("offset", offset, MAX_OFFSET)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"search_fulltext: {name} must be an int, got {type(value).__name__}")
        low = 1 if name == "limit" else 0
        if not low <= value <= top:
            raise ValueError(f"search_fulltext: {name} must be between {low} and {top}, "
                             f"got {value}")


def index_record(admission: AdmissionRef, pages: list[tuple[PageRef, str]]) -> int:
    """Replace what the index has for ``admission`` with ``pages``; pages written."""
    checked = check_pages(admission, pages)
    return index_for().replace_admission(admission.id, checked)


def search(query: str, limit: int, offset: int) -> list[FulltextHit]:
    check_paging(limit, offset)
    return index_for().search(query, limit, offset)

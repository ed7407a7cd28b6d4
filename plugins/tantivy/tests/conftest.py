"""Fixtures of the tantivy plugin's tests: an index in a temporary folder and record refs
(helpers in tv_refs, a unique module name so no other test folder's helpers collide)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tv_refs import admission, pages_of  # noqa: E402


@pytest.fixture
def ix(tmp_path):
    from bingan_tantivy.backend import TantivyIndex

    index = TantivyIndex(tmp_path / "tantivy")
    yield index
    index.close()


@pytest.fixture
def put(ix):
    """put(adm_id, [text, ...]): index one admission through the checks the hook uses."""
    from bingan_tantivy.service import check_pages

    def _put(adm_id: int, texts: list[str | None]) -> int:
        return ix.replace_admission(adm_id, check_pages(admission(adm_id), pages_of(adm_id, texts)))

    return _put


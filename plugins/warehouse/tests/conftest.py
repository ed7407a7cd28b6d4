"""Fixtures of the warehouse tests: core's ``rt`` (every installed plugin enabled, each test on
SQLite and PostgreSQL) plus a small record store (store_world) built through the real APIs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from store_world import build_world  # noqa: E402


@pytest.fixture
def world(rt):
    return build_world(rt)

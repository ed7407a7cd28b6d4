"""The hooks with only this plugin enabled, on real records (SQLite and PostgreSQL), the CLI
and the settings (the checks are shared with the other backend: tests/fulltext_contract.py)."""

from __future__ import annotations

import pytest

import fulltext_contract as contract
from bingan.core.runtime import build_runtime, set_current
from support import make_config


@pytest.fixture
def rt_fulltext(db_url, tmp_path):
    from bingan_fulltext import service

    rt = build_runtime(make_config(tmp_path / "home", db_url, enabled=["fulltext"]))
    yield rt
    service.close_all()
    rt.close()
    set_current(None)


def test_hook_index_record(rt_fulltext):
    from bingan_fulltext import service

    contract.hook_index_record(rt_fulltext, service, "whoosh", "007")


def test_hook_search_fulltext(rt_fulltext, tmp_path):
    contract.hook_search_fulltext(rt_fulltext, tmp_path, "007")


def test_cli_stats_and_optimize(tmp_path):
    from bingan_fulltext import service

    contract.cli_stats_and_optimize(tmp_path, "fulltext", service, optimized_segments=1)


def test_settings_are_validated_and_path_is_configurable(tmp_path):
    from bingan_fulltext import FulltextSettings, service

    contract.settings_are_validated_and_path_is_configurable(tmp_path, "fulltext",
                                                             FulltextSettings, service)

"""Core's tests: the shared fixtures (``rt``, ``db_url`` ...) come from core's pytest plugin
``bingan.testing.plugin``; only what needs this repository's files is here."""

from pathlib import Path

import pytest

from support import register_test_kit

FIXTURES = Path(__file__).parent / "fixtures"


def pytest_configure(config):
    register_test_kit(config)


@pytest.fixture
def sample_eps(monkeypatch):
    """Entry points that install the test plugin ``sample`` (tests/fixtures/bingan_sample)."""
    from importlib.metadata import EntryPoint

    monkeypatch.syspath_prepend(str(FIXTURES))
    return [EntryPoint(name="sample", value="bingan_sample", group="bingan")]

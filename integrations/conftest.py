"""The shared fixtures (``rt``, ``db_url`` ...) come from core's pytest plugin
``bingan.testing.plugin`` (entry point pytest11); registered here too for a venv that predates
it."""

from support import register_test_kit


def pytest_configure(config):
    register_test_kit(config)

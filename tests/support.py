"""Helpers shared by the tests of core and of every plugin in this repository (tests/ is on
pytest's path). The fixtures and helpers a plugin needs are core's test kit ``bingan.testing``
(installed with core; its pytest plugin registers by entry point)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _import_testing_kit() -> None:
    """A venv installed before ``bingan.testing`` existed (``make setup`` installs it): load it
    from the checkout."""
    try:
        import bingan.testing  # noqa: F401
    except ModuleNotFoundError:
        folder = REPO / "testing"
        spec = importlib.util.spec_from_file_location(
            "bingan.testing", folder / "__init__.py", submodule_search_locations=[str(folder)])
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules["bingan.testing"] = module
        spec.loader.exec_module(module)


_import_testing_kit()


def register_test_kit(config) -> None:
    """Register core's pytest plugin unless its entry point already did (a venv that predates
    it); called from the conftests' ``pytest_configure``."""
    from bingan.testing import plugin

    if not config.pluginmanager.is_registered(plugin):
        config.pluginmanager.register(plugin, "bingan.testing.plugin")


from bingan.testing.db import build_test_runtime, make_config  # noqa: E402,F401

"""The hook contract documents and tests itself (as Datasette does)."""

from __future__ import annotations

import inspect
import re

from bingan.hooks import docgen, specs
from support import REPO


def test_every_hookspec_has_a_docstring_and_types():
    for name, fn in docgen.hookspecs():
        assert fn.__doc__ and len(fn.__doc__.strip()) > 40, f"{name} lacks documentation"
        assert inspect.signature(fn).return_annotation is not inspect.Signature.empty, name


def test_docs_match_specs():
    assert (REPO / "docs" / "hooks.md").read_text(encoding="utf-8") == docgen.render(), (
        "docs/hooks.md is stale: run `make docs`")
    for name, fn in docgen.hookspecs():
        params = ", ".join(inspect.signature(fn).parameters)
        assert f"### `{name}(" in docgen.render()
        for p in inspect.signature(fn).parameters:
            assert p in params


def test_every_hookspec_has_a_test_of_its_own():
    sources = ""
    for base in ("tests", "plugins", "integrations"):
        for py in (REPO / base).rglob("test_*.py"):
            sources += py.read_text(encoding="utf-8")
    missing = [name for name, _ in docgen.hookspecs()
               if not re.search(rf"def test_hook_{name}\b", sources)]
    assert not missing, f"hooks without a test_hook_<name>: {missing}"


def _production_sources() -> str:
    """Every non-test Python file of core, hooks and the plugins and integrations."""
    out = []
    for base in ("core", "hooks", "plugins", "integrations"):
        for py in (REPO / base).rglob("*.py"):
            rel = py.relative_to(REPO).parts
            if "tests" in rel or "migrations" in rel:
                continue
            out.append(py.read_text(encoding="utf-8"))
    return "\n".join(out)


def test_every_hookspec_is_called_in_production_code():
    """A hook nobody calls is dead surface (``export_formats`` passed its own test for a long
    time while nothing asked it): each spec needs a call site outside the tests."""
    sources = _production_sources()
    missing = [name for name, _ in docgen.hookspecs()
               if not re.search(rf"hook\.{name}\b|[\"']{name}[\"']", sources)]
    assert not missing, f"hooks that no production code calls: {missing}"


def test_hooks_api_version_is_semver():
    assert re.fullmatch(r"\d+\.\d+", specs.HOOKS_API)

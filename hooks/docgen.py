"""Generate docs/hooks.md from the hook specs, per owner (``--check`` fails when it is stale).

Core's contract is ``bingan.hooks.specs``; a plugin's own hooks are the module its metadata
names (``PluginInfo.hookspecs``), found among the installed plugins (entry points of group
``bingan``). Each owner gets a chapter, its banner comments the sections.
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from bingan.hooks import specs

DOC = Path(__file__).resolve().parents[1] / "docs" / "hooks.md"


@dataclass(frozen=True)
class Owner:
    """Who declares a set of hooks: ``core`` or a plugin's name."""

    name: str
    module: ModuleType


def owners() -> list[Owner]:
    """Core first, then every installed plugin that declares hooks of its own, by name."""
    out = [Owner("core", specs)]
    for ep in sorted(entry_points(group="bingan"), key=lambda e: e.name):
        info = getattr(ep.load(), "PLUGIN", None)
        module = getattr(info, "hookspecs", None)
        if isinstance(module, ModuleType):
            out.append(Owner(ep.name, module))
    return out


def specs_of(module: ModuleType) -> list[tuple[str, Callable[..., Any]]]:
    """The hookspecs of one module, in source order."""
    found = [(name, fn) for name, fn in vars(module).items()
             if callable(fn) and hasattr(fn, "bingan_spec")
             and getattr(fn, "__module__", None) == module.__name__]
    found.sort(key=lambda kv: inspect.getsourcelines(kv[1])[1])
    return found


def hookspecs() -> list[tuple[str, Callable[..., Any]]]:
    """Every hookspec of every owner (core's first)."""
    return [pair for owner in owners() for pair in specs_of(owner.module)]


def _sections(module: ModuleType) -> dict[int, str]:
    """Line number -> section title, from the banner comments of a specs module."""
    lines = inspect.getsource(module).splitlines()
    out = {}
    for i, line in enumerate(lines):
        if line.startswith("# ====") and i + 1 < len(lines) and lines[i + 1].startswith("# "):
            title = lines[i + 1][2:].strip()
            if not title.startswith("===="):
                out[i + 1] = title
    return out


def _render_owner(owner: Owner) -> list[str]:
    if owner.name == "core":
        parts = ["## Core (`bingan.hooks.specs`)", "",
                 "Declared by core: always there, whichever plugins are enabled.", ""]
    else:
        parts = [f"## Plugin `{owner.name}` (`{owner.module.__name__}`)", "",
                 f"Declared by the {owner.name} plugin: they exist only when it is enabled. A "
                 f"plugin that implements or calls them declares `depends_on=(\"{owner.name}\",)`"
                 ", or implements them with `@hookimpl(optionalhook=True)`.", ""]
        doc = inspect.getdoc(owner.module)
        if doc:
            parts += [doc.split("\n\n")[0].replace("\n", " "), ""]
    sections = _sections(owner.module)
    done: set[str] = set()
    for name, fn in specs_of(owner.module):
        line = inspect.getsourcelines(fn)[1]
        title = None
        for ln in sorted(sections):
            if ln < line:
                title = sections[ln]
        if title and title not in done:
            parts += [f"### {title}", ""]
            done.add(title)
        opts = getattr(fn, "bingan_spec", {}) or {}
        sig = str(inspect.signature(fn)).replace("'", "")
        first = " *(first result)*" if opts.get("firstresult") else ""
        parts += [f"#### `{name}{sig}`{first}", "", inspect.cleandoc(fn.__doc__ or ""), ""]
    return parts


def render() -> str:
    parts = [
        "# Hooks",
        "",
        "Generated from the hook specs by `python -m bingan.hooks.docgen` (`make docs`) — do "
        "not edit by hand.",
        f"Hooks API version: {specs.HOOKS_API}. Plugins implement hooks with "
        "`from bingan.hooks import hookimpl`; a plugin declares hooks of its own with "
        "`bingan.hooks.hookspec` in a module named by `PluginInfo.hookspecs`.",
        "",
    ]
    for owner in owners():
        parts += _render_owner(owner)
    return "\n".join(parts).rstrip() + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not DOC.exists() or DOC.read_text(encoding="utf-8") != text:
            print("docs/hooks.md is out of date: run `make docs`", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Generate docs/hooks.md from hooks/specs.py (``--check`` fails when the file is stale)."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

from bingan.hooks import specs

DOC = Path(__file__).resolve().parents[1] / "docs" / "hooks.md"


def hookspecs() -> list[tuple[str, object]]:
    """Every hookspec in source order."""
    out = []
    for name, fn in vars(specs).items():
        if callable(fn) and hasattr(fn, "bingan_spec"):
            out.append((name, fn))
    out.sort(key=lambda kv: inspect.getsourcelines(kv[1])[1])
    return out


def _sections() -> dict[int, str]:
    """Line number -> section title, from the banner comments of specs.py."""
    lines = inspect.getsource(specs).splitlines()
    out = {}
    for i, line in enumerate(lines):
        if line.startswith("# ====") and i + 1 < len(lines) and lines[i + 1].startswith("# "):
            title = lines[i + 1][2:].strip()
            if not title.startswith("===="):
                out[i + 1] = title
    return out


def render() -> str:
    parts = [
        "# Hooks",
        "",
        "Generated from `hooks/specs.py` by `python -m bingan.hooks.docgen` — do not edit by hand.",
        f"Hooks API version: {specs.HOOKS_API}. Plugins implement hooks with "
        "`from bingan.hooks import hookimpl`.",
        "",
    ]
    sections = _sections()
    done: set[str] = set()
    for name, fn in hookspecs():
        line = inspect.getsourcelines(fn)[1]
        title = None
        for ln in sorted(sections):
            if ln < line:
                title = sections[ln]
        if title and title not in done:
            parts += [f"## {title}", ""]
            done.add(title)
        opts = getattr(fn, "bingan_spec", {}) or {}
        sig = str(inspect.signature(fn)).replace("'", "")
        first = " *(first result)*" if opts.get("firstresult") else ""
        parts += [f"### `{name}{sig}`{first}", "", inspect.cleandoc(fn.__doc__ or ""), ""]
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

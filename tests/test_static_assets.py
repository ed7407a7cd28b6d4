"""Every script and stylesheet a template loads from /static is a file of the distribution
that serves it: /static/vendor from core (htmx, from npm at build or setup time),
/static/theme from the theme, /static/<plugin> from that plugin's static folder (a plugin's own
npm files, such as ECharts, under static/vendor). A plugin that points at another
distribution's files breaks when that one is not installed."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REF = re.compile(r"""(?:src|href)=["'](/static/([^/"']+)/([^"'?#{}]+))["']""")


def _served_from(area: str) -> list[Path]:
    if area == "vendor":
        return [REPO / "core" / "web" / "vendor"]
    if area == "theme":
        return [REPO / "themes" / "default" / "static"]
    # a plugin's folder and URL use its name (scan-phone), its package the identifier form
    return [d / f"bingan_{area.replace('-', '_')}" / "static" for base in ("plugins", "integrations")
            for d in [REPO / base / area] if d.is_dir()]


def test_every_static_reference_is_a_file_of_its_distribution():
    templates = [*REPO.glob("themes/*/templates/**/*.html"),
                 *REPO.glob("plugins/*/bingan_*/templates/**/*.html"),
                 *REPO.glob("integrations/*/bingan_*/templates/**/*.html")]
    assert len(templates) > 20
    missing, seen = [], 0
    for tpl in templates:
        for url, area, rest in REF.findall(tpl.read_text(encoding="utf-8")):
            seen += 1
            folders = _served_from(area)
            if not any((f / rest).is_file() for f in folders):
                missing.append(f"{tpl.relative_to(REPO)}: {url}")
    assert seen > 5
    assert not missing, ("not in the distribution that serves it (vendor files come from "
                         "`make setup`, i.e. npm ci): " + "; ".join(missing))

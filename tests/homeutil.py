"""Reading the home page's panels (core.web.home) in tests: panel id -> {label: figure}."""

from __future__ import annotations

import html as htmllib
import re

PANEL = re.compile(r'<section class="card home-panel" id="home-([^"]+)">(.*?)</section>', re.S)
ITEM = re.compile(r'<li class="home-item[^"]*">\s*(?:<a href="([^"]*)">|<span class="row">)'
                  r'<span class="lbl">([^<]*)</span>(?:<span class="num">([^<]*)</span>)?', re.S)


def home_panels(html: str) -> dict[str, dict[str, str]]:
    """Each panel on the page by its id (``core-health``, ``capture-today`` ...), with its
    items' figures by label ('' for a plain link)."""
    return {key: {htmllib.unescape(m.group(2)): htmllib.unescape(m.group(3) or "")
                  for m in ITEM.finditer(body)}
            for key, body in PANEL.findall(html)}


def home_links(html: str) -> dict[str, set[str]]:
    """Each panel's item links by panel id."""
    return {key: {htmllib.unescape(m.group(1)) for m in ITEM.finditer(body) if m.group(1)}
            for key, body in PANEL.findall(html)}

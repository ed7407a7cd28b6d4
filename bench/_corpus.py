"""The page corpus for the benches (bingan_imaging.corpus): both parts, cached on disk.

The tuning part is pages 0.. of its plan; the validation part starts at page 100 of its plan,
pages that no setting was fitted on and that were not looked at while tuning. Pages are drawn
once and kept in ``$BINGAN_CORPUS_CACHE`` (default ~/.cache/bingan/corpus); the cleaned pages
(``process_page`` output) are kept beside them, keyed by the imaging settings.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import sys
import unicodedata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for _p in ("imaging", "pageindex"):
    sys.path.insert(0, str(REPO / "plugins" / _p))

from bingan_imaging import corpus  # noqa: E402

VALIDATION_START = 100


def cache_dir() -> Path:
    return Path(os.environ.get("BINGAN_CORPUS_CACHE",
                               Path.home() / ".cache" / "bingan" / "corpus"))


def specs(part: str, n: int) -> list[dict]:
    return corpus.plan(part, n, VALIDATION_START if part == "validation" else 0)


def pages(part: str, n: int, log=None) -> list[tuple[bytes, dict]]:
    out = []
    for i, spec in enumerate(specs(part, n)):
        out.append(corpus.cached(spec, cache_dir()))
        if log:
            log(f"\r  {part}: {i + 1}/{n} pages drawn or read from the cache")
    if log:
        log("\n")
    return out


class PM:
    """A stand-in runtime for ``pipeline.process``: its plugin manager answers process_page's
    two hooks by the imaging plugin alone (no database)."""

    def __init__(self, settings, qc: bool = True) -> None:
        from bingan_imaging.quality import assess
        from bingan_imaging.steps import page_steps

        class hook:  # noqa: N801 - mimics pluggy's pm.hook
            @staticmethod
            def page_steps(rt):
                return [page_steps()]

            @staticmethod
            def assess_page(image, dpi, notes, rt):
                return [assess(image, dpi, notes, settings.qc)] if qc else []

        self.pm = self
        self.hook = hook


def processed(data: bytes, truth: dict, settings=None):
    """The cleaned page (JPEG bytes, steps) through bingan_imaging.pipeline.process, cached."""
    import msgspec

    from bingan_imaging import pipeline
    from bingan_imaging.settings import ImagingSettings as Settings

    settings = settings or Settings()
    key = hashlib.sha256(data + msgspec.json.encode(settings) + _code_hash()).hexdigest()[:24]
    d = cache_dir() / "processed"
    d.mkdir(parents=True, exist_ok=True)
    jpg, meta = d / f"{key}.jpg", d / f"{key}.json"
    if jpg.exists() and meta.exists():
        return jpg.read_bytes(), json.loads(meta.read_text("utf-8"))
    dpi = None if truth["source"] == "camera" else truth["effective_dpi"]
    res = pipeline.process(data, truth["source"], dpi, PM(settings), settings)
    info = {"steps": res.steps, "quality": {"status": res.quality.status,
                                            "metrics": res.quality.metrics,
                                            "reasons": list(res.quality.reasons)}}
    jpg.write_bytes(res.image)
    meta.write_text(json.dumps(info, ensure_ascii=False, default=str), "utf-8")
    return res.image, info


def _code_hash() -> bytes:
    """The imaging plugin's source: a cleaned page is kept only for the code that made it."""
    import bingan_imaging

    h = hashlib.sha256()
    for f in sorted(Path(bingan_imaging.__file__).parent.glob("*.py")):
        h.update(f.read_bytes())
    return h.digest()


def norm(s: str) -> str:
    return "".join(unicodedata.normalize("NFKC", s).split())


def truth_text(truth: dict) -> tuple[str, str]:
    """(text an OCR must find, text it may find: seal ring text)."""
    must = "\n".join(t for t, _box, kind in truth["lines"] if kind != "seal")
    may = "\n".join(t for t, _box, kind in truth["lines"] if kind == "seal")
    return must, may


def char_score(truth: str, found: str, may: str = "") -> tuple[int, int]:
    """(errors, characters) of an OCR text against the truth, in any reading order: the
    characters matched as multisets; errors = the longer of the two minus the matched ones
    (a misread character is one error, a missed or an invented one is one error each).
    Reading order is left out on purpose: two columns and tables have more than one right
    order, and the full-text index does not depend on it."""
    t, f = collections.Counter(norm(truth)), collections.Counter(norm(found))
    if may:  # characters of a seal's text read beyond the truth are not errors
        f = f - (collections.Counter(norm(may)) & (f - t))
    matched = sum((t & f).values())
    n_t, n_f = sum(t.values()), sum(f.values())
    return max(n_t, n_f) - matched, n_t


def load_average() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "?"

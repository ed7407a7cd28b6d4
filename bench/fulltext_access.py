"""Full-text search under reading rights (issue 9, C1): the filtered query beside the
unfiltered one, at 1,000,000 pages.

The corpus, queries and loading are bench/fulltext.py's (50 pages per admission, ~420
characters a page, 2-4 character phrases). Each query is asked through the ``search_fulltext``
hook (limit 20, offset 0, snippets included) with each of these ``admissions`` filters, the
shapes ``core.permissions.readable`` hands a search:

- ``none``: no filter (the peer: what the query costs without rights);
- ``all``: the record room (a role that reads every record: ``exclude`` with no ids);
- ``deny 100``: every record but 100 denied ones (a deny rule, a VIP patient);
- ``allow 50``: a physician who signed or treated 50 stays;
- ``allow 2000``: a department sharing its 2,000 stays (10 % of a 1 M-page archive).

and, as the floor the in-query filter must beat, ``after 50``: the same 50-stay physician with
the filter applied only after the query (fetch 200 hits at a time, keep the permitted ones,
until 20 are found or the hits run out), which is what a search without ``AdmissionFilter``
would have to do.

    .venv/bin/python bench/fulltext_access.py                     # tantivy, 1,000,000 pages
    .venv/bin/python bench/fulltext_access.py --pages 100000 --backend fulltext
    .venv/bin/python bench/fulltext_access.py --workdir /tmp/ft --keep    # then --reuse

Loading a million pages takes most of the run (see bench/fulltext.py); ``--workdir D --keep``
keeps the index and ``--reuse`` queries it again. Figures are wall-clock and CPU ms of the
calling thread per query.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for p in (REPO, REPO / "tests", REPO / "bench"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from bingan.core.runtime import build_runtime, set_current  # noqa: E402
from bingan.hooks.types import AdmissionFilter  # noqa: E402
from fulltext import PAGES_PER_ADMISSION, Generator, make_queries  # noqa: E402
from support import make_config  # noqa: E402


def load(name: str, pages: int, gen: Generator, workdir: Path, batch: int, reuse: bool):
    """A runtime with only backend ``name`` and its index of ``pages`` generated pages."""
    home = workdir / f"{name}-{pages}"
    marker = home / "bench-loaded"
    if not (reuse and marker.exists()):
        shutil.rmtree(home, ignore_errors=True)
    rt = build_runtime(make_config(home, f"sqlite:///{home}/unused.sqlite3", enabled=[name]))
    if name == "fulltext":
        from bingan_fulltext.backend import PageText
        from bingan_fulltext.service import index_for
        bulk: dict = {}
    else:
        from bingan_tantivy.backend import PageText
        from bingan_tantivy.service import index_for
        bulk = dict(heap_mb=256, threads=2)
    ix = index_for(rt)
    admissions = pages // PAGES_PER_ADMISSION
    if not marker.exists():
        t0 = time.monotonic()
        for first in range(1, admissions + 1, batch):
            chunk = [(adm, [PageText(adm * 100 + i, i, t)
                            for i, t in enumerate(gen.admission(adm), 1)])
                     for adm in range(first, min(first + batch, admissions + 1))]
            ix.replace_many(chunk, **bulk)
            done = min(first + batch - 1, admissions) * PAGES_PER_ADMISSION
            print(f"  {name}: {done:>9,} pages indexed ({time.monotonic() - t0:.0f} s)",
                  file=sys.stderr, flush=True)
        marker.write_text("loaded")
    return rt, admissions


def filters(admissions: int, seed: int) -> dict[str, AdmissionFilter | None]:
    rnd = random.Random(seed)
    ids = range(1, admissions + 1)
    return {
        "none": None,
        "all": AdmissionFilter(frozenset(), exclude=True),
        "deny 100": AdmissionFilter(frozenset(rnd.sample(ids, 100)), exclude=True),
        "allow 50": AdmissionFilter(frozenset(rnd.sample(ids, 50))),
        "allow 2000": AdmissionFilter(frozenset(rnd.sample(ids, min(2000, admissions)))),
    }


def after(hook, q: str, allowed: AdmissionFilter, want: int = 20, chunk: int = 200) -> list:
    """The floor: filter after the query, page by page of unfiltered hits."""
    out, offset = [], 0
    while len(out) < want:
        hits = hook(query=q, limit=chunk, offset=offset, admissions=None)
        if not hits:
            break
        out.extend(h for h in hits if allowed.allows(h.admission_id))
        offset += chunk
    return out[:want]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", choices=("tantivy", "fulltext"), default="tantivy")
    ap.add_argument("--pages", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--after-queries", type=int, default=60,
                    help="queries for the slow filter-after floor")
    ap.add_argument("--seed", type=int, default=20260504)
    ap.add_argument("--batch", type=int, default=400)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--reuse", action="store_true")
    args = ap.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bingan-bench-access-"))
    workdir.mkdir(parents=True, exist_ok=True)
    gen = Generator(args.seed)
    queries = make_queries(args.queries, args.seed + 1)
    try:
        rt, admissions = load(args.backend, args.pages, gen, workdir, args.batch, args.reuse)
        set_current(rt)
        hook = rt.pm.hook.search_fulltext
        shapes = filters(admissions, args.seed + 2)
        for q in queries[:30]:  # warm-up
            for f in shapes.values():
                hook(query=q, limit=20, offset=0, admissions=f)
        rows = []
        for label, f in shapes.items():
            lat, cpu, hits = [], [], 0
            for q in queries:
                c0, t0 = time.thread_time(), time.perf_counter()
                got = hook(query=q, limit=20, offset=0, admissions=f)
                lat.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.thread_time() - c0) * 1000)
                hits += len(got)
                assert f is None or all(f.allows(h.admission_id) for h in got), label
            rows.append((label, len(queries), lat, cpu, hits / len(queries)))
        allowed = shapes["allow 50"]
        lat, cpu, hits = [], [], 0
        for q in queries[:args.after_queries]:
            c0, t0 = time.thread_time(), time.perf_counter()
            got = after(hook, q, allowed)
            lat.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.thread_time() - c0) * 1000)
            hits += len(got)
        rows.append(("after 50", args.after_queries, lat, cpu, hits / args.after_queries))
        rt.close()
        set_current(None)
    finally:
        if not (args.keep or args.reuse):
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"{args.backend}, {admissions * PAGES_PER_ADMISSION:,} pages ({admissions:,} stays); "
          "ms per search_fulltext call (limit 20, snippets), wall-clock and CPU of the thread")
    print(f"{'filter':<11} {'queries':>7} {'p50':>7} {'p95':>7} {'max':>7} {'cpu p50':>7} "
          f"{'cpu p95':>7} {'hits/q':>6}")
    for label, n, lat, cpu, hq in rows:
        ql, qc = statistics.quantiles(lat, n=100), statistics.quantiles(cpu, n=100)
        print(f"{label:<11} {n:>7} {ql[49]:>7.2f} {ql[94]:>7.2f} {max(lat):>7.1f} "
              f"{qc[49]:>7.2f} {qc[94]:>7.2f} {hq:>6.1f}")


if __name__ == "__main__":
    main()

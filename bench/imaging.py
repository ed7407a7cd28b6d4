"""Page cleanup: our pipeline beside the floor (decode + re-encode) and the `deskew` package.

Generates its own seeded test pages (A4 at 300 DPI: medical-record Chinese in a Debian CJK
font, a ruled table, a red seal, handwriting-like strokes, a known skew) in three capture
styles (scanner, phone photo, photocopy), dense and sparse, and prints side by side in one run:

- floor: decode the JPEG and encode it again (OpenCV / libjpeg-turbo, same quality as ours);
- ours: the whole cleanup in ``process_page`` (decode, orientation, perspective, deskew,
  illumination, denoise, crop, blank flag, encode), one core; "+QC" adds the quality check
  (``assess_page``: sharpness, residual skew, levels ...) that process_page also runs;
- deskew: decode, ``deskew.determine_skew`` on the grey page (its README's call, defaults:
  1-degree Hough bins), rotate with cv2.warpAffine, encode (PyPI ``deskew``; ``pip install
  deskew`` or ``pip install -e plugins/imaging[bench]``); "deskew 0.1" is the same with
  ``min_deviation=0.1`` (finer bins, five times slower).

Angle error: for ours, the skew the text lines still have in the output, computed exactly from
the generator's page-to-image map and the pipeline's recorded input-to-output transform (so a
phone photo's perspective counts too); for deskew, its estimate against the true skew of the
text in the image it was given (for phone photos: the mean angle of the text lines in the
photo, which a pure deskew tool is left with). Timings are the minimum of ``--repeat`` runs per
page, interleaved, on one core (cv2.setNumThreads(1)); the machine this runs on may be shared,
so the load average is printed.

    .venv/bin/python bench/imaging.py [--pages 3] [--seed 1] [--repeat 3] [--no-peer]
        [--no-fine-peer] [--clock wall|cpu] [--styles scanner,camera,photocopy]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins" / "imaging"))

import cv2  # noqa: E402
import msgspec  # noqa: E402
import numpy as np  # noqa: E402

from bingan_imaging import pipeline, synth  # noqa: E402
from bingan_imaging.settings import ImagingSettings as Settings  # noqa: E402

sys.path.insert(0, str(REPO / "bench"))
from _corpus import PM as _PM  # noqa: E402


def _floor(data: bytes, quality: int) -> None:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])


def _peer(data: bytes, quality: int, determine_skew, **kw) -> float | None:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    angle = determine_skew(gray, **kw)
    if angle is not None:
        h, w = img.shape[:2]
        M = cv2.getRotationMatrix2D((w / 2, h / 2), float(angle), 1.0)
        img = cv2.warpAffine(img, M, (w, h), flags=cv2.INTER_LINEAR,
                             borderValue=(255, 255, 255))
    cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return None if angle is None else float(angle)


_clock = time.perf_counter


def _best(fn, repeat: int) -> tuple[float, object]:
    best, out = math.inf, None
    for _ in range(repeat):
        t0 = _clock()
        out = fn()
        best = min(best, _clock() - t0)
    return best * 1000.0, out


def _inter(a, b) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def _deskewed(jpg: bytes) -> bytes:
    """The page turned level by the ``deskew`` package (the peer for curl: it straightens the
    page as a whole, never its lines)."""
    from deskew import determine_skew

    img = cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_COLOR)
    angle = determine_skew(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))
    if angle is not None and abs(angle) < 45:
        h, w = img.shape[:2]
        M = cv2.getRotationMatrix2D((w / 2, h / 2), float(angle), 1.0)
        img = cv2.warpAffine(img, M, (w, h), flags=cv2.INTER_LINEAR,
                             borderValue=(255, 255, 255))
    return cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()


def _curvature(jpg: bytes, dpi: float) -> tuple[float, int]:
    """Residual curvature (mm) of the text lines of a processed page (dewarp.residual_mm)."""
    from bingan_imaging import dewarp, skew
    from bingan_imaging.work import Work

    img = cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_COLOR)
    w = Work.start(img)
    lines = dewarp.text_lines(skew.ink_mask(w.gray_view(w.factor), paper=None))[0]
    return dewarp.residual_mm(lines, dpi / 25.4 / w.factor), len(lines)


def corpus_report(n: int) -> None:
    """Orientation, glare and curl on both parts of the independent corpus, beside the
    peers: pages left as captured (no orientation step), no glare check (every spot missed),
    the planar perspective alone (no dewarp)."""
    import _corpus

    print(f"corpus: {n} pages per part (tuning: plan 0..; validation: plan "
          f"{_corpus.VALIDATION_START}..), load average {_corpus.load_average()}", flush=True)
    on = Settings()
    off = msgspec.structs.replace(on, steps=[x for x in on.steps if x != "dewarp"])
    rows = []
    for part in ("tuning", "validation"):
        r = {"part": part, "pages": 0, "right": 0, "wrong": 0, "unsure": 0, "as_is": 0,
             "conf": [], "spots": 0, "found": 0, "false": 0, "glare_fail": 0,
             "glare_pages": 0, "curl_before": [], "curl_after": [], "flat_before": [],
             "flat_after": [], "curl_deskew": [], "flat_deskew": [], "ms": [],
             "ms_dewarp": []}
        for data, t in _corpus.pages(part, n, log=lambda m: print(m, end="", flush=True)):
            t0 = time.perf_counter()
            jpg, info = _corpus.processed(data, t, on)
            st = info["steps"]
            r["ms"].append(st["timing_ms"]["total"])
            r["ms_dewarp"].append(st["timing_ms"].get("dewarp", 0.0))
            r["pages"] += 1
            oc = st.get("orientation_check", {})
            r["conf"].append(oc.get("confidence", 0.0))
            if oc.get("unsure"):
                r["unsure"] += 1
            if st["orientation"] == t["turn"]:
                r["right"] += 1
            elif not oc.get("unsure"):
                r["wrong"] += 1
            r["as_is"] += t["turn"] == 0
            det = (st.get("glare") or {}).get("input_boxes", [])
            r["spots"] += len(t["glare"])
            r["found"] += sum(any(_inter(d, g) for d in det) for g in t["glare"])
            r["false"] += sum(not any(_inter(d, g) for g in t["glare"]) for d in det)
            if t["glare"]:
                r["glare_pages"] += 1
                r["glare_fail"] += info["quality"]["status"] == "fail" and any(
                    "反光" in x for x in info["quality"]["reasons"])
            if t["source"] == "camera":
                jpg0, info0 = _corpus.processed(data, t, off)
                dpi = info0["steps"].get("dpi") or 300.0
                key = "curl" if t["curl_mm"] else "flat"
                r[f"{key}_before"].append(_curvature(jpg0, dpi)[0])
                r[f"{key}_after"].append(_curvature(jpg, dpi)[0])
                r[f"{key}_deskew"].append(_curvature(_deskewed(jpg0), dpi)[0])
            _ = time.perf_counter() - t0
        rows.append(r)
    print()
    print(f"{'part':<11}{'pages':>6}  {'orientation right (as captured)':>32}  {'turned wrong':>12}"
          f"  {'unsure, left':>12}  {'min conf':>8}")
    for r in rows:
        print(f"{r['part']:<11}{r['pages']:>6}  {r['right']:>18} ({r['as_is']:>2} as captured)"
              f"  {r['wrong']:>12}  {r['unsure']:>12}  {min(r['conf']):>8.2f}")
    print(f"\n{'part':<11}{'glare spots':>12}{'found':>7}{'missed':>7}{'false alarms':>13}"
          f"{'glare pages failed by QC':>26}   (peer: no glare check finds 0)")
    for r in rows:
        print(f"{r['part']:<11}{r['spots']:>12}{r['found']:>7}{r['spots'] - r['found']:>7}"
              f"{r['false']:>13}{r['glare_fail']:>20}/{r['glare_pages']}")
    print("\nresidual curvature of text lines, mean mm per page (none = planar perspective"
          " only; deskew = that turned level by the deskew package, the peer; ours = with"
          " dewarp)")
    print(f"{'part':<11}{'curled pages':>13}{'none':>8}{'deskew':>8}{'ours':>8}"
          f"{'flat photos':>13}{'none':>8}{'deskew':>8}{'ours':>8}{'cleanup ms/page':>17}"
          f"{'dewarp ms':>11}")
    for r in rows:
        def m(v):
            return statistics.mean(v) if v else float("nan")
        print(f"{r['part']:<11}{len(r['curl_before']):>13}{m(r['curl_before']):>8.2f}"
              f"{m(r['curl_deskew']):>8.2f}{m(r['curl_after']):>8.2f}"
              f"{len(r['flat_before']):>13}{m(r['flat_before']):>8.2f}"
              f"{m(r['flat_deskew']):>8.2f}{m(r['flat_after']):>8.2f}{m(r['ms']):>17.0f}"
              f"{m(r['ms_dewarp']):>11.0f}")
    print(f"load average {_corpus.load_average()} (times are wall, on a shared machine; first"
          f" runs draw and clean the pages, later runs read them from the cache)\n", flush=True)


def figures(out: Path, n: int) -> None:
    """Before/after pictures for a reader: the first curled and the first glare page of the
    validation part (the capture, the page without and with dewarp; the glare boxes drawn on
    the processed page), JPEG at a third of their size."""
    import _corpus

    out.mkdir(parents=True, exist_ok=True)
    on = Settings()
    off = msgspec.structs.replace(on, steps=[x for x in on.steps if x != "dewarp"])

    def save(name: str, jpg_or_img) -> None:
        img = jpg_or_img if isinstance(jpg_or_img, np.ndarray) else \
            cv2.imdecode(np.frombuffer(jpg_or_img, np.uint8), cv2.IMREAD_COLOR)
        small = cv2.resize(img, None, fx=1 / 3, fy=1 / 3, interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(out / name), small, [cv2.IMWRITE_JPEG_QUALITY, 80])
        print(f"  wrote {out / name}")

    done = set()
    for data, t in _corpus.pages("validation", n):
        if t["capture"] == "phone_curl" and "curl" not in done:
            save("curl_capture.jpg", data)
            save("curl_before.jpg", _corpus.processed(data, t, off)[0])
            save("curl_after.jpg", _corpus.processed(data, t, on)[0])
            done.add("curl")
        if t["capture"] == "phone_glare" and "glare" not in done:
            jpg, info = _corpus.processed(data, t, on)
            img = cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_COLOR)
            for x0, y0, x1, y1 in (info["steps"].get("glare") or {}).get("boxes", []):
                cv2.rectangle(img, (x0, y0), (x1, y1), (0, 119, 230), 6)
            save("glare_capture.jpg", data)
            save("glare_found.jpg", img)
            done.add("glare")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pages", type=int, default=3, help="pages per style and density")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per page (min is kept)")
    ap.add_argument("--no-peer", action="store_true", help="skip the deskew package")
    ap.add_argument("--no-fine-peer", action="store_true",
                    help="skip the deskew package with min_deviation=0.1 (slow)")
    ap.add_argument("--styles", default="scanner,camera,photocopy")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="wall time, or this process's CPU time (steadier on a shared machine)")
    ap.add_argument("--corpus", type=int, default=24, metavar="N",
                    help="pages per part of the independent corpus (0: skip)")
    ap.add_argument("--synthetic", action="store_true",
                    help="also the speed and skew table on the project's own generated pages")
    ap.add_argument("--figures", type=Path, metavar="DIR",
                    help="write before/after pictures of a curled and a glare page (validation"
                         " part) to DIR")
    args = ap.parse_args(argv)
    if args.corpus:
        corpus_report(args.corpus)
    if args.figures:
        figures(args.figures, max(args.corpus, 24))
    if not args.synthetic:
        return 0
    global _clock
    _clock = time.process_time if args.clock == "cpu" else time.perf_counter

    cv2.setNumThreads(1)
    determine_skew = None
    if not args.no_peer:
        try:
            from deskew import determine_skew
        except ImportError:
            print("the peer `deskew` is not installed: pip install deskew "
                  "(or pip install -e plugins/imaging[bench]); running without it\n")
    settings = Settings()
    pm, pm_qc = _PM(settings, qc=False), _PM(settings)
    q = settings.jpeg_quality
    load0 = os.getloadavg()
    print(f"bench/imaging.py: A4 300 DPI pages, {args.pages} per style and density, seed "
          f"{args.seed}, best of {args.repeat}, one core (cv2 threads=1), JPEG q={q}, "
          f"{args.clock} clock")
    print(f"load average at start: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f} "
          f"on {os.cpu_count()} CPUs (a shared machine inflates every column alike)\n")
    rows = []
    for style in args.styles.split(","):
        for content in ("dense", "sparse"):
            r = {"style": style, "content": content, "floor": [], "ours": [], "qc": [],
                 "peer": [], "err": [], "peer_err": [], "quality": [], "fine": [],
                 "fine_err": []}
            for i in range(args.pages):
                seed = args.seed * 1000 + i + (0 if content == "dense" else 500)
                page = synth.make_page(seed, style, content)
                data = page.jpeg(90)
                ms_floor = ms_ours = ms_qc = math.inf
                for _ in range(args.repeat):  # interleaved, so load changes hit all alike
                    ms_floor = min(ms_floor, _best(lambda: _floor(data, q), 1)[0])
                    t, _ = _best(lambda: pipeline.process(data, style, None, pm, settings), 1)
                    ms_ours = min(ms_ours, t)
                    t, res = _best(lambda: pipeline.process(data, style, None, pm_qc,
                                                            settings), 1)
                    ms_qc = min(ms_qc, t)
                T = np.array(res.steps["transform"], np.float64)
                left = synth.text_angle(T @ page.page_to_image, page.page_size,
                                        page.content_box)
                r["floor"].append(ms_floor)
                r["ours"].append(ms_ours)
                r["qc"].append(ms_qc)
                r["err"].append(abs(left))
                r["quality"].append(res.quality.status)
                if determine_skew is not None:
                    truth = synth.text_angle(page.page_to_image, page.page_size,
                                             page.content_box)
                    # deskew returns the counter-clockwise turn that levels the page: the
                    # skew it measured is its negative
                    ms_peer, a = _best(lambda: _peer(data, q, determine_skew), 1)
                    r["peer"].append(ms_peer)
                    r["peer_err"].append(abs(truth + a) if a is not None else abs(truth))
                    if not args.no_fine_peer:
                        ms_fine, a = _best(lambda: _peer(data, q, determine_skew,
                                                         min_deviation=0.1), 1)
                        r["fine"].append(ms_fine)
                        r["fine_err"].append(abs(truth + a) if a is not None else abs(truth))
                print(f"  {style:9s} {content:6s} #{i}: truth {page.angle:+7.3f}°  "
                      f"floor {ms_floor:5.0f} ms  ours {ms_ours:5.0f} ms (x{ms_ours / ms_floor:.2f}"
                      f", +QC x{ms_qc / ms_floor:.2f}, left {left:+.4f}°, QC {res.quality.status})"
                      + (f"  deskew {r['peer'][-1]:5.0f} ms (err {r['peer_err'][-1]:.3f}°)"
                         if r["peer"] else "")
                      + (f"  deskew 0.1 {r['fine'][-1]:5.0f} ms (err {r['fine_err'][-1]:.3f}°)"
                         if r["fine"] else ""), flush=True)
            rows.append(r)
    load1 = os.getloadavg()
    print()
    hdr = (f"{'style':17s}{'pages':>5s} {'floor ms':>9s} {'ours ms':>8s} {'ratio':>6s} "
           f"{'+QC ms':>7s} {'ratio':>6s} {'err mean°':>10s} {'err max°':>9s} "
           f"{'deskew ms':>10s} {'ratio':>6s} {'err mean°':>10s} {'err max°':>9s}")
    print(hdr)
    print("-" * len(hdr))
    allr = {"floor": [], "ours": [], "qc": [], "peer": [], "err": [], "peer_err": [],
            "fine": [], "fine_err": []}
    for r in rows:
        for k in allr:
            allr[k] += r[k]
        _line(f"{r['style']}/{r['content']}", r)
    print("-" * len(hdr))
    _line("all", allr)
    if allr["fine"]:
        print("\ndeskew with min_deviation=0.1 (finer Hough bins):")
        print(f"{'style':17s}{'pages':>5s} {'ms':>9s} {'ratio':>6s} {'err mean°':>10s} "
              f"{'err max°':>9s}")
        for r in rows + [dict(allr, style="all", content="")]:
            f = statistics.mean(r["floor"])
            name = f"{r['style']}/{r['content']}" if r["content"] else "all"
            print(f"{name:17s}{len(r['fine']):>5d} {statistics.mean(r['fine']):9.0f} "
                  f"{statistics.mean(r['fine']) / f:6.2f} {statistics.mean(r['fine_err']):10.4f} "
                  f"{max(r['fine_err']):9.4f}")
    print(f"\nload average at end: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
    print("goals: ratio <= 1.6 (whole cleanup vs decode+encode), skew error mean <= 0.01°, "
          "max <= 0.05°")
    return 0


def _line(name: str, r: dict) -> None:
    f, o, c = statistics.mean(r["floor"]), statistics.mean(r["ours"]), statistics.mean(r["qc"])
    s = (f"{name:17s}{len(r['floor']):>5d} {f:9.0f} {o:8.0f} {o / f:6.2f} {c:7.0f} {c / f:6.2f} "
         f"{statistics.mean(r['err']):10.4f} {max(r['err']):9.4f}")
    if r["peer"]:
        p = statistics.mean(r["peer"])
        s += (f" {p:10.0f} {p / f:6.2f} {statistics.mean(r['peer_err']):10.4f} "
              f"{max(r['peer_err']):9.4f}")
    print(s)


if __name__ == "__main__":
    sys.exit(main())

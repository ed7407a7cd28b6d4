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
import numpy as np  # noqa: E402

from bingan_imaging import pipeline, synth  # noqa: E402
from bingan_imaging.settings import Settings  # noqa: E402

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
    args = ap.parse_args(argv)
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

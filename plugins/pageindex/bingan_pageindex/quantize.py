"""8-bit versions of rapidocr's shipped models, built once per machine and cached.

Static (QDQ, per-channel) quantization with onnxruntime's own tool halves the recognizer's and
the detector's CPU time on this hardware (bench/ocr.py shows it) at unchanged accuracy on the
generated pages. The float models come from the rapidocr wheel; the calibration inputs come
from pages drawn by ``synth`` (printed text, like processed scans), so nothing is downloaded.
The original models are opset 11, whose DequantizeLinear has no per-channel axis: they are
converted to opset 17 first.

A built model must pass a self-check (OCR of a generated page no worse than the float model's
by more than ``MAX_LOSS``); one that fails is marked rejected and the float model is used.
Files are written atomically (temp file, rename), so concurrent builders do no harm.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from bingan_pageindex.engine import OcrEngine

log = logging.getLogger("bingan.pageindex")
RECIPE = "q1"
MAX_LOSS = 0.01
CALIBRATION = [(9101, "出院记录"), (9102, "检验报告"), (9103, "医嘱单"), (9104, "病程记录"),
               (9105, "病案首页")]
CHECK_PAGE = (9201, "入院记录")


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "bingan" / "pageindex"


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def char_accuracy(truth: str, got: str) -> float:
    """1 - edit distance / length, over the text without whitespace (NFKC-normalized)."""
    from rapidfuzz.distance import Levenshtein

    t = "".join(unicodedata.normalize("NFKC", truth).split())
    g = "".join(unicodedata.normalize("NFKC", got).split())
    if not t:
        return 1.0 if not g else 0.0
    return max(0.0, 1.0 - Levenshtein.distance(t, g) / len(t))


def _session_path(infer_session) -> Path:
    path = getattr(infer_session.session, "_model_path", None)
    if not path or not Path(path).exists():
        raise RuntimeError("cannot locate the rapidocr model file to quantize")
    return Path(path)


def _calibration(engine: "OcrEngine") -> tuple[list[np.ndarray], list[np.ndarray]]:
    import cv2

    from bingan_pageindex.synth import make_page

    det_inputs, rec_inputs = [], []
    for seed, kind in CALIBRATION:
        img = cv2.cvtColor(np.asarray(make_page(seed, kind).image), cv2.COLOR_RGB2BGR)
        scale = engine.scale_for(img)
        small = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        det_inputs.append(engine.det.get_preprocess()(small))
        boxes = engine.detect(img, (0, 0, img.shape[1], img.shape[0]), scale)
        for li in engine.line_images(img, boxes)[::3]:
            rec_inputs.append((li.astype(np.float32).transpose(2, 0, 1) / 127.5 - 1.0)[None])
    return det_inputs, rec_inputs


def _quantize(src: Path, dst: Path, samples: list[np.ndarray], ops: list[str]) -> None:
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import (
        CalibrationDataReader, QuantFormat, QuantType, quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(samples)

        def get_next(self):
            x = next(self.it, None)
            return None if x is None else {"x": x}

    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dst.parent) as tmp:
        model = onnx.load(str(src))
        if max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) < 13:
            model = version_converter.convert_version(model, 17)
        conv = Path(tmp) / "opset17.onnx"
        onnx.save(model, str(conv))
        out = Path(tmp) / "int8.onnx"
        quantize_static(str(conv), str(out), Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, op_types_to_quantize=ops)
        os.replace(out, dst)


def int8_paths(engine: "OcrEngine", cache_dir: Path) -> tuple[Path, Path] | None:
    """Paths of the 8-bit detector and recognizer for this engine, building them if needed;
    None when they failed their self-check (the float models are used then)."""
    import onnxruntime

    det_src, rec_src = _session_path(engine.det.session), _session_path(engine.rec.session)
    tag = (f"{RECIPE}-ort{onnxruntime.__version__}-{_sha(det_src)[:12]}-{_sha(rec_src)[:12]}"
           )
    det_q, rec_q = cache_dir / f"det-{tag}.onnx", cache_dir / f"rec-{tag}.onnx"
    rejected = cache_dir / f"rejected-{tag}"
    if rejected.exists():
        return None
    if det_q.exists() and rec_q.exists():
        return det_q, rec_q
    log.info("building 8-bit OCR models in %s (once per machine)", cache_dir)
    det_in, rec_in = _calibration(engine)
    _quantize(det_src, det_q, det_in, ["Conv"])
    _quantize(rec_src, rec_q, rec_in, ["Conv", "MatMul"])
    # self-check against the float models on a page the calibration did not see
    import cv2

    from bingan_pageindex.synth import make_page

    page = make_page(*CHECK_PAGE)
    img = cv2.cvtColor(np.asarray(page.image), cv2.COLOR_RGB2BGR)
    float_acc = char_accuracy(page.text, engine.read(img).text)
    saved = engine.swap_sessions(det_q, rec_q)
    try:
        int8_acc = char_accuracy(page.text, engine.read(img).text)
    finally:
        engine.restore_sessions(saved)
    if int8_acc < float_acc - MAX_LOSS:
        log.warning("8-bit OCR models rejected: accuracy %.4f vs %.4f", int8_acc, float_acc)
        for p in (det_q, rec_q):
            p.unlink(missing_ok=True)
        rejected.parent.mkdir(parents=True, exist_ok=True)
        rejected.write_text(f"{int8_acc:.4f} < {float_acc:.4f}\n")
        return None
    return det_q, rec_q

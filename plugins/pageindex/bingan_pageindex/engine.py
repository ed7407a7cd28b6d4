"""OCR of page images with rapidocr's models, tuned for printed A4 record pages.

rapidocr 3.10 ships its ONNX models (PP-OCRv6 small detection and recognition) inside the wheel
and checks them by SHA-256 before use, so nothing is downloaded. Its default pipeline
(``RapidOCR()(image)``) takes several seconds per 300-DPI page on one core; almost all of it is
recognition, whose cost grows with the width of the text-line images it is fed (~0.1 ms per
column of a 48-pixel-high line on this machine) plus the 320-pixel minimum width it pads every
batch to. What this module does instead, each step measured by bench/ocr.py:

1. crop the page to its ink (margins carry no text) and skip blank pages;
2. run detection on that crop at the scale that brings the page's long side to
   ``det_max_side`` pixels (text lines stay detectable far below 300 DPI);
3. cut each detected line out of the full-resolution page and scale it to the recognizer's
   48-pixel height (``squeeze`` < 1 narrows it too: faster, but 0.55 cost 1-4 points of
   accuracy on fonts and tables the project had not tuned on, so the default is 1.0);
4. recognize lines in width-sorted batches padded only to the widest line of each batch
   (no 320-pixel minimum), without the 180-degree line classifier (the imaging plugin has
   already turned the page upright).

The engine is built once per process (``get_engine``): loading the models takes seconds.
"""

from __future__ import annotations

import io
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bingan.hooks.types import TextBlock


class OcrInputError(ValueError):
    """The image could not be decoded (truncated, not an image, unsupported type)."""


@dataclass(frozen=True)
class OcrParams:
    """Knobs of the tuned pipeline (see the module docstring); defaults are the measured ones."""

    det_max_side: int = 896
    # 1.0: line images keep their proportions. 0.55 was fitted on the project's own pages and
    # cost 1-4 points on other fonts and on ruled tables (bench/ocr.py, corpus tuning part)
    squeeze: float = 1.0
    batch: int = 2
    threads: int = 1
    text_score: float = 0.5
    box_thresh: float = 0.5
    unclip_ratio: float = 1.6
    crop_to_content: bool = True
    # red seal ink (a pixel whose red exceeds its green and blue by this much) is taken at its
    # red channel, where it is as light as the paper: the text under a seal is read without the
    # seal's ring, star and text over it. 0: off. Black and blue ink are untouched.
    seal_red_margin: int = 40
    int8: bool = True
    cache_dir: str = ""  # where the 8-bit models are kept; "" = ~/.cache/bingan/pageindex
    # onnxruntime's CPU memory arena keeps every buffer a run ever needed (hundreds of MB once
    # line widths and batch shapes vary) for the life of the process; without it buffers go
    # back to malloc after each run, at a small CPU cost with small batches (README "Memory")
    mem_arena: bool = False


@dataclass
class OcrResult:
    blocks: list[TextBlock]
    width: int
    height: int
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return blocks_text(self.blocks)


REC_HEIGHT = 48
# Detection stops at the band's edge: reaching below it (even 1 % of the page) brings in the
# patient header line, whose recognition costs ~25 % more time per band for nothing.
BAND_MARGIN = 0.0
MAX_IMAGE_PIXELS = 200_000_000  # a 300-DPI A0 sheet is ~140 MP; more is not a page


def blocks_text(blocks: list[TextBlock]) -> str:
    """Blocks joined in reading order: blocks on one line by a space, lines by a newline."""
    lines: list[list[TextBlock]] = []
    for b in blocks:
        if lines:
            last = lines[-1][-1]
            h = max(1, last.box[3] - last.box[1])
            if abs(b.box[1] - last.box[1]) < h * 0.5 and b.box[0] >= last.box[0]:
                lines[-1].append(b)
                continue
        lines.append([b])
    return "\n".join(" ".join(b.text for b in ln) for ln in lines)


def decode_image(image: Any) -> np.ndarray:
    """A BGR uint8 array from encoded bytes, a PIL image or an array (gray, BGR, BGRA)."""
    import cv2

    if isinstance(image, (bytes, bytearray, memoryview)):
        data = bytes(image)
        if not data:
            raise OcrInputError("图像为空")
        arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if arr is None:
            # cv2 refuses some valid files (CMYK JPEG, 16-bit TIFF ...): let Pillow try
            try:
                from PIL import Image

                with Image.open(io.BytesIO(data)) as im:
                    if im.width * im.height > MAX_IMAGE_PIXELS:
                        raise OcrInputError("图像尺寸过大")
                    im.load()
                    arr = cv2.cvtColor(np.asarray(im.convert("RGB")), cv2.COLOR_RGB2BGR)
            except OcrInputError:
                raise
            except Exception as exc:
                raise OcrInputError("无法解码图像（文件损坏或不是图像）") from exc
        return arr
    if hasattr(image, "convert") and hasattr(image, "size"):  # PIL image
        return cv2.cvtColor(np.asarray(image.convert("RGB")), cv2.COLOR_RGB2BGR)
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise OcrInputError(f"不支持的像素类型 {image.dtype}")
        if image.ndim == 2:
            return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        if image.ndim == 3 and image.shape[2] == 3:
            return image
        if image.ndim == 3 and image.shape[2] == 4:
            return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
        raise OcrInputError(f"不支持的图像形状 {image.shape}")
    raise OcrInputError(f"不支持的图像类型 {type(image).__name__}")


def drop_red(img: np.ndarray, margin: int) -> np.ndarray:
    """``img`` with its red ink (seals) lightened to the red channel's value: a seal stamped
    over text multiplies the paper by its red, so the text under it is as dark as elsewhere in
    every channel and stays; the seal alone is light in red. A grey page comes back as is."""
    import cv2

    b, g, r = cv2.split(img)
    red = cv2.subtract(r, cv2.max(g, b)) > margin
    if not red.any():
        return img
    out = img.copy()
    out[red] = r[red][:, None]
    return out


def content_box(gray: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of the inked part of a page, with a margin; None when blank."""
    import cv2

    f = 8
    small = cv2.resize(gray, (max(1, gray.shape[1] // f), max(1, gray.shape[0] // f)),
                       interpolation=cv2.INTER_AREA)
    paper = float(np.percentile(small, 90))
    ink = small < paper - 40
    if ink.sum() < 4:
        return None
    rows = np.nonzero(ink.sum(axis=1) >= 1)[0]
    cols = np.nonzero(ink.sum(axis=0) >= 1)[0]
    m = 6  # cells of 8 px: room for the detector's unclipped boxes
    h, w = gray.shape
    return (max(0, (cols[0] - m) * f), max(0, (rows[0] - m) * f),
            min(w, (cols[-1] + 1 + m) * f), min(h, (rows[-1] + 1 + m) * f))


class OcrEngine:
    """rapidocr's detector and recognizer sessions driven by the tuned pipeline."""

    name = "rapidocr-3.10/PP-OCRv6-small"

    def __init__(self, params: OcrParams | None = None) -> None:
        from rapidocr import RapidOCR

        self.params = p = params or OcrParams()
        self.rapid = RapidOCR(params={
            "Global.log_level": "critical",
            "Global.use_cls": False,
            "EngineConfig.onnxruntime.intra_op_num_threads": p.threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            "EngineConfig.onnxruntime.enable_cpu_mem_arena": p.mem_arena,
            # we scale the image ourselves; the detector only rounds to multiples of 32
            "Det.limit_type": "max",
            "Det.limit_side_len": 100_000,
            "Det.box_thresh": p.box_thresh,
            "Det.unclip_ratio": p.unclip_ratio,
        })
        # rapidocr builds its sessions lazily; these loaders are the same ones its own
        # __call__ uses (pinned version, see pyproject.toml)
        self.det = self.rapid._load_det_model()
        self.rec = self.rapid._load_rec_model()
        self.precision = "float32"
        if p.int8:
            from bingan_pageindex.quantize import default_cache_dir, int8_paths

            paths = int8_paths(self, Path(p.cache_dir) if p.cache_dir else default_cache_dir())
            if paths is not None:
                self.swap_sessions(*paths)
                self.precision = "int8"

    def _session(self, path: Path):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = self.params.threads
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.enable_cpu_mem_arena = self.params.mem_arena
        return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

    def swap_sessions(self, det_path: Path, rec_path: Path) -> tuple[Any, Any]:
        """Use other model files (same inputs and outputs); returns the sessions replaced."""
        old = (self.det.session.session, self.rec.session.session)
        self.det.session.session = self._session(det_path)
        self.rec.session.session = self._session(rec_path)
        return old

    def restore_sessions(self, old: tuple[Any, Any]) -> None:
        self.det.session.session, self.rec.session.session = old

    # ---------------------------------------------------------------- pipeline steps
    def detect(self, img: np.ndarray, region: tuple[int, int, int, int], scale: float
               ) -> np.ndarray:
        """Quadrilaterals (N, 4, 2) of text lines in page coordinates."""
        import cv2

        x0, y0, x1, y1 = region
        crop = img[y0:y1, x0:x1]
        if scale < 1.0:
            crop = cv2.resize(crop, (max(32, round(crop.shape[1] * scale)),
                                     max(32, round(crop.shape[0] * scale))),
                              interpolation=cv2.INTER_AREA)
        else:
            scale = 1.0
        out = self.det(crop)
        if out.boxes is None or len(out.boxes) == 0:
            return np.zeros((0, 4, 2), np.float32)
        boxes = np.asarray(out.boxes, np.float32) / scale
        boxes += np.array([x0, y0], np.float32)
        return boxes

    def line_images(self, img: np.ndarray, boxes: np.ndarray) -> list[np.ndarray]:
        import cv2
        from rapidocr.utils.process_img import get_rotate_crop_image

        out = []
        for b in boxes:
            c = get_rotate_crop_image(img, b.copy())
            h, w = c.shape[:2]
            nw = max(8, round(w * REC_HEIGHT / max(1, h) * self.params.squeeze))
            out.append(cv2.resize(c, (nw, REC_HEIGHT), interpolation=cv2.INTER_AREA))
        return out

    def recognize(self, lines: list[np.ndarray]) -> list[tuple[str, float]]:
        """Text and confidence per line image (48 px high), batched by width."""
        if not lines:
            return []
        order = sorted(range(len(lines)), key=lambda i: lines[i].shape[1])
        results: list[tuple[str, float]] = [("", 0.0)] * len(lines)
        bs = max(1, self.params.batch)
        for start in range(0, len(order), bs):
            idx = order[start:start + bs]
            width = max(lines[i].shape[1] for i in idx)
            batch = np.zeros((len(idx), 3, REC_HEIGHT, width), np.float32)
            for k, i in enumerate(idx):
                im = lines[i].astype(np.float32).transpose(2, 0, 1) / 127.5 - 1.0
                batch[k, :, :, : im.shape[2]] = im
            preds = self.rec.session(batch)
            decoded, _ = self.rec.postprocess_op(preds, False)
            for k, i in enumerate(idx):
                results[i] = (decoded[k][0], float(decoded[k][1]))
        return results

    # ---------------------------------------------------------------- public API
    def scale_for(self, img: np.ndarray) -> float:
        return min(1.0, self.params.det_max_side / max(img.shape[:2]))

    def read(self, image: Any, *, band: float | None = None) -> OcrResult:
        """OCR a page (``band`` None) or only its top ``band`` fraction (the title band).

        The detector scale is the same in both cases (chosen from the whole page), so a title
        reads the same whether the band or the page was OCR'd.
        """
        import cv2

        t0, c0 = time.perf_counter(), time.thread_time()
        img = decode_image(image)
        h, w = img.shape[:2]
        if h * w > MAX_IMAGE_PIXELS:
            raise OcrInputError("图像尺寸过大")
        scale = self.scale_for(img)
        if self.params.seal_red_margin > 0:
            img = drop_red(img, self.params.seal_red_margin)
        gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        region = content_box(gray) if self.params.crop_to_content else (0, 0, w, h)
        timings: dict[str, float] = {}
        if region is not None and band is not None:
            x0, y0, x1, y1 = region
            region = (x0, y0, x1, min(y1, max(y0 + 32, round(h * (band + BAND_MARGIN)))))
            if y0 >= round(h * band):
                region = None
        timings["prepare"] = time.perf_counter() - t0
        if region is None:
            return OcrResult([], w, h, timings)
        t1, c1 = time.perf_counter(), time.thread_time()
        boxes = self.detect(img, region, scale)
        if band is not None and len(boxes):
            # keep lines that start inside the band
            boxes = boxes[boxes[:, :, 1].min(axis=1) < h * band]
        t2, c2 = time.perf_counter(), time.thread_time()
        texts = self.recognize(self.line_images(img, boxes))
        t3, c3 = time.perf_counter(), time.thread_time()
        timings.update(detect=t2 - t1, recognize=t3 - t2, cpu_prepare=c1 - c0,
                       cpu_detect=c2 - c1, cpu_recognize=c3 - c2)
        blocks = []
        for quad, (text, score) in zip(boxes, texts):
            text = text.strip()
            if not text or score < self.params.text_score:
                continue
            xs, ys = quad[:, 0], quad[:, 1]
            box = (max(0, int(xs.min())), max(0, int(ys.min())),
                   min(w, int(np.ceil(xs.max()))), min(h, int(np.ceil(ys.max()))))
            blocks.append(TextBlock(text=text, box=box, confidence=round(score, 4)))
        timings["total"] = time.perf_counter() - t0
        timings["cpu_total"] = time.thread_time() - c0
        return OcrResult(blocks, w, h, timings)

    @property
    def label(self) -> str:
        return f"{self.name}/{self.precision}"

    def describe(self) -> dict[str, Any]:
        return {"engine": self.label, **asdict(self.params)}


_engines: dict[OcrParams, OcrEngine] = {}
_lock = threading.Lock()


def get_engine(params: OcrParams | None = None) -> OcrEngine:
    """One engine per parameter set per process (sessions are thread-safe)."""
    params = params or OcrParams()
    with _lock:
        eng = _engines.get(params)
        if eng is None:
            eng = _engines[params] = OcrEngine(params)
        return eng

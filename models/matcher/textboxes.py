"""Text boxes from an OCR text detector, as a mask the matcher must never claim.

Labels, panel letters, scale-bar numbers, axis ticks and captions repeat across panels and agree
perfectly wherever they repeat. ``text_mask`` runs the detection model of PP-OCRv4 (``rapidocr``:
the ``rapidocr-onnxruntime`` wheel, Apache-2.0, weights inside the wheel, CPU, one thread) on the
working image downscaled to ``text_max_side`` and fills each box, grown by a margin proportional to
its text height. Only detection runs: nothing is read. The detector also takes rows of blot bands
and clusters of small cells for text lines, so a box must hold sharp, contrasted strokes on paper or
in a pure annotation colour (``text_like``) and cover at most ``text_max_box_area`` of its panel.
When the package is missing (or the switch says ``none``) the mask is empty and the colour-overlay
masking works alone.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from models.matcher.config import MaskingParams
from models.matcher.panels import Layout
from models.matcher.prepare import WorkingImage

log = logging.getLogger(__name__)

RAPIDOCR_MODEL = "models/ch_PP-OCRv4_det_infer.onnx"  # inside the rapidocr_onnxruntime package
DB_THRESHOLD = 0.3  # text-probability threshold of the DB post-processing (rapidocr's default)
UNCLIP_RATIO = 1.6  # DB box expansion around the shrunk text kernel (rapidocr's default)

Boxes = list[np.ndarray]  # (4, 2) float32 corner points (x, y), one per text line, in the input's pixels


@functools.cache
def _rapidocr(box_score: float) -> Callable[[np.ndarray], Boxes] | None:
    """The PP-OCRv4 detector (one per process and score threshold), or None when rapidocr is missing."""
    try:
        import rapidocr_onnxruntime
        from rapidocr_onnxruntime.ch_ppocr_det import TextDetector
    except ImportError as exc:
        log.warning("text detector rapidocr unavailable (%s): masking falls back to colour overlays only", exc)
        return None
    config = {
        "model_path": str(Path(rapidocr_onnxruntime.__file__).parent / RAPIDOCR_MODEL),
        "intra_op_num_threads": 1,  # workers are single-threaded processes
        "inter_op_num_threads": 1,
        "limit_type": "max",  # never upscales; text_mask has already downscaled to text_max_side
        "limit_side_len": 2000,
        "mean": [0.5, 0.5, 0.5],
        "std": [0.5, 0.5, 0.5],
        "thresh": DB_THRESHOLD,
        "box_thresh": box_score,
        "max_candidates": 1000,
        "unclip_ratio": UNCLIP_RATIO,
        "use_dilation": True,
        "score_mode": "fast",
    }
    detector = TextDetector(config)

    def detect(rgb: np.ndarray) -> Boxes:
        boxes, _ = detector(np.ascontiguousarray(rgb[:, :, ::-1]))  # PP-OCR expects BGR
        return [] if boxes is None else [np.asarray(b, np.float32) for b in boxes]

    return detect


DETECTORS: dict[str, Callable[[float], Callable[[np.ndarray], Boxes] | None]] = {
    "rapidocr": _rapidocr,
    "none": lambda box_score: None,
}


def text_detector(params: MaskingParams) -> Callable[[np.ndarray], Boxes] | None:
    """The configured detector (built once per process), or None when it is off or not installed."""
    if params.text_detector not in DETECTORS:
        raise ValueError(f"matcher.masking.text_detector: unknown {params.text_detector!r}, known {sorted(DETECTORS)}")
    return DETECTORS[params.text_detector](params.text_box_score)


def text_boxes(rgb: np.ndarray, params: MaskingParams) -> Boxes | None:
    """Text-line boxes in ``rgb``'s pixels (its longer side downscaled to ``text_max_side`` for the
    detector), or None when no detector runs."""
    detect = text_detector(params)
    if detect is None:
        return None
    h, w = rgb.shape[:2]
    scale = min(1.0, params.text_max_side / max(h, w))
    small = rgb if scale == 1.0 else cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    return [box / scale for box in detect(small)]


def text_mask(work: WorkingImage, layout: Layout, overlays: np.ndarray, params: MaskingParams) -> np.ndarray:
    """Pixels inside detected text boxes, each grown by ``text_margin`` x its text height (bool, working
    size). ``overlays``: the colour-overlay mask, which vouches for text drawn over images."""
    mask = np.zeros(work.shape, np.uint8)
    if params.text_min_paper > 0 and params.text_min_overlay > 0 and not layout.page.any() and not overlays.any():
        return mask.astype(bool)  # no box could pass text_like: neither paper nor overlay colour anywhere
    boxes = text_boxes(work.rgb, params)
    if not boxes:
        return mask.astype(bool)
    # most area a box may cover by the panel its centre lies in; no limit on the page and on graphics
    limit = np.array([p.area if p.matchable else np.inf for p in layout.panels] + [np.inf]) * params.text_max_box_area
    for box in boxes:
        if cv2.contourArea(box) > limit[layout.panel_at(box.mean(axis=0, keepdims=True))[0]]:
            continue  # a stretch of texture taken for one text line
        if not text_like(work.gray, layout.page, overlays, box, params):
            continue
        height = min(np.linalg.norm(box[1] - box[0]), np.linalg.norm(box[3] - box[0]))
        cv2.fillPoly(mask, [np.round(grow(box, params.text_margin * height)).astype(np.int32)], 1)
    return mask.astype(bool)


def text_like(gray: np.ndarray, page: np.ndarray, overlays: np.ndarray, box: np.ndarray, params: MaskingParams) -> bool:
    """Whether a box holds rendered text: sharp, contrasted strokes on paper or in an annotation colour.

    Within the box, the steepest one-pixel steps (99th percentile) must cover ``text_min_sharpness`` of
    its contrast (2nd to 98th percentile grey, at least ``text_min_contrast``): glyph edges are one or two
    pixels wide, blot bands fade over several. And at least ``text_min_paper`` of the box must be page
    colour (labels, ticks, captions) or ``text_min_overlay`` of it pure-colour overlay (letters drawn on
    a micrograph): small cells with crisp outlines look like text to the detector, but are neither."""
    crop = rectified(gray, box)
    low, high = np.percentile(crop, (2, 98))
    contrast = float(high - low)
    steps = max(float(np.percentile(np.abs(np.diff(crop, axis=axis)), 99)) for axis in (0, 1))
    if contrast < params.text_min_contrast or steps < params.text_min_sharpness * contrast:
        return False
    paper = rectified(page.astype(np.float32), box).mean()
    return (
        paper >= params.text_min_paper or rectified(overlays.astype(np.float32), box).mean() >= params.text_min_overlay
    )


def rectified(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The inside of a box (corners top-left, top-right, bottom-right, bottom-left) warped upright (float32)."""
    width = max(round(float(np.linalg.norm(box[1] - box[0]))), 2)
    height = max(round(float(np.linalg.norm(box[3] - box[0]))), 2)
    corners = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
    warp = cv2.getPerspectiveTransform(box.astype(np.float32), corners)
    return cv2.warpPerspective(
        image.astype(np.float32), warp, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def grow(box: np.ndarray, margin: float) -> np.ndarray:
    """A box (corners top-left, top-right, bottom-right, bottom-left) with every side moved ``margin`` px out."""
    along = box[1] - box[0]
    across = box[3] - box[0]
    u = along / max(float(np.linalg.norm(along)), 1e-6) * margin
    v = across / max(float(np.linalg.norm(across)), 1e-6) * margin
    return box + np.stack([-u - v, u - v, u + v, -u + v])

"""Text boxes from the OCR text detector: repeated labels are masked and never claimed, a genuine copy
next to them is still found, and the colour-overlay masking stands alone when the detector is off or
not installed. Only the tests that run the detector need rapidocr."""

import dataclasses
import logging
import sys

import cv2
import numpy as np
import pytest

from models.matcher import textboxes
from models.matcher.config import MatcherParams
from models.matcher.masking import content_mask
from models.matcher.panels import find_panels
from models.matcher.pipeline import match_image
from models.matcher.prepare import prepare
from shared.config import param
from shared.metric import of1_masks
from tests import matcher_figures as figures

LABEL_GREY = (90, 90, 90)  # not a pure colour: the colour-overlay test cannot see these glyphs
PANEL = (220, 300)


@pytest.fixture(scope="module")
def params() -> MatcherParams:
    return MatcherParams.from_dict(param("matcher"))


def _detector(params: MatcherParams, name: str) -> MatcherParams:
    return dataclasses.replace(params, masking=dataclasses.replace(params.masking, text_detector=name))


def _labelled_panel(seed: int, glyphs: list[np.ndarray]) -> np.ndarray:
    """Unique texture with a white legend inset holding the same grey "10 um" in every panel, and a white letter."""
    panel = figures.noise_texture(PANEL, seed)
    panel[160:210, 120:290] = 255
    plain = panel.copy()
    cv2.putText(panel, "10 um", (130, 198), cv2.FONT_HERSHEY_SIMPLEX, 1.0, LABEL_GREY, 2, cv2.LINE_AA)
    glyphs.append((panel != plain).any(axis=2))
    figures.label(panel, "KD", (10, 30), 0.8, (255, 255, 255))
    return panel


def _labelled_figure() -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """Four labelled panels on a page; returns the figure, the grey glyph pixels and the panel origins."""
    glyphs: list[np.ndarray] = []
    figure, origins = figures.grid_figure([_labelled_panel(seed, glyphs) for seed in range(4)], 2)
    ink = np.zeros(figure.shape[:2], bool)
    for (y, x), mask in zip(origins, glyphs, strict=True):
        ink[y : y + PANEL[0], x : x + PANEL[1]] |= mask
    return figure, ink, origins


def _masks(figure: np.ndarray, params: MatcherParams) -> tuple[np.ndarray, np.ndarray]:
    work = prepare(figure, params.image)
    return content_mask(work, find_panels(work, params.panels), params.masking)


def test_repeated_grey_labels_are_boxed_and_never_claimed(params):
    pytest.importorskip("rapidocr_onnxruntime")
    figure, glyphs, _ = _labelled_figure()
    content_off, _ = _masks(figure, _detector(params, "none"))
    content_on, overlays = _masks(figure, _detector(params, "rapidocr"))
    assert content_off[glyphs].mean() > 0.2  # the colour test alone leaves grey glyphs matchable ...
    assert not content_on[glyphs].any()  # ... the text boxes take every one of them out
    assert overlays[glyphs].all()
    assert match_image(figure, _detector(params, "rapidocr")).operations == []


def test_a_genuine_copy_beside_the_labels_is_still_found(params):
    pytest.importorskip("rapidocr_onnxruntime")
    figure, _, origins = _labelled_figure()
    (y0, x0), (y3, x3) = origins[0], origins[3]
    forged, truth = figures.copy_region(figure, (y0 + 50, x0 + 60), (70, 80), (y3 + 40, x3 + 150))
    result = match_image(forged, _detector(params, "rapidocr"))
    assert len(result.operations) == 1
    assert of1_masks(result.operations, [truth]) >= 0.8


def test_without_the_detector_text_boxes_are_empty_and_overlays_remain(params, monkeypatch, caplog):
    figure, glyphs, origins = _labelled_figure()
    monkeypatch.setitem(sys.modules, "rapidocr_onnxruntime", None)  # importing it now raises ImportError
    textboxes._rapidocr.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger=textboxes.__name__):
            content, overlays = _masks(figure, _detector(params, "rapidocr"))
        assert "falls back to colour overlays" in caplog.text
        assert textboxes.text_boxes(figure, params.masking) is None
    finally:
        textboxes._rapidocr.cache_clear()  # later tests build the real detector again
    y, x = origins[0]
    assert overlays[y + 22, x + 20]  # the white letter: the colour-overlay masking still works
    assert content[glyphs].mean() > 0.2  # grey glyphs need the detector
    assert content[y + 60, x + 60]  # plain texture stays


def test_an_unknown_detector_is_named(params):
    with pytest.raises(ValueError, match="text_detector"):
        textboxes.text_detector(_detector(params, "tesseract").masking)


def test_grow_moves_every_side_of_a_tilted_box_out():
    box = cv2.boxPoints(((40.0, 30.0), (40.0, 12.0), 20.0)).astype(np.float32)  # 40 x 12, turned 20 degrees
    box = np.roll(box, -int(np.argmin(box.sum(axis=1))), axis=0)  # any corner first; clockwise as PP-OCR gives
    grown = textboxes.grow(box, 3.0)
    assert cv2.contourArea(grown) == pytest.approx(46.0 * 18.0, rel=1e-3)
    for corner in box:  # each old corner lies 3 px inside the new sides
        assert cv2.pointPolygonTest(grown.reshape(-1, 1, 2), (float(corner[0]), float(corner[1])), True) == (
            pytest.approx(3.0, abs=1e-3)
        )

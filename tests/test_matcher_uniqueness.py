"""Agreement must be unique (issue 12, authentic false positives): a dotted dish seen between cells repeats
at every period, and round fields of view agree under every flip and turn; neither is a copy. Copies that
merely share those traits are still found."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from models.matcher import MatcherParams, match_image
from models.matcher.uniqueness import repeats_exactly, symmetric_lookalike
from shared.config import param
from shared.synth.case import jpeg_roundtrip
from shared.synth.config import case_rng
from shared.synth.families.brightfield import render_transwell
from shared.synth.scenarios import make_scene
from tests.matcher_figures import assert_one_copy_after_jpeg
from tests.synth_fixtures import small_config


@pytest.fixture(scope="module")
def params() -> MatcherParams:
    return MatcherParams.from_dict(param("matcher"))


def dotted_dish(seed: int = 0, shape: tuple[int, int] = (240, 320), period: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """A faint printed dot lattice under a shading gradient, with unrelated dark blobs (cells) on top; returns the
    grey image and the lattice background between the blobs."""
    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    dots = (np.hypot((yy % period) - period / 2, (xx % period) - period / 2) <= 3).astype(np.float32)
    gray = 200.0 + 0.08 * xx - 25.0 * cv2.GaussianBlur(dots, (0, 0), 1.0)
    cells = np.zeros(shape, np.uint8)
    for _ in range(14):
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        axes = (int(rng.integers(8, 20)), int(rng.integers(6, 14)))
        cv2.ellipse(cells, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    gray = np.where(cells > 0, 110.0 + 20 * rng.standard_normal(shape), gray)
    return gray.astype(np.float32), cells == 0


def test_a_pattern_repeating_between_unrelated_objects_is_periodic():
    gray, background = dotted_dish()
    region = np.zeros_like(background)
    region[40:200, 60:260] = True
    assert repeats_exactly(gray, region & background, tolerance=1.0)
    rng = np.random.default_rng(1)
    texture = cv2.GaussianBlur(rng.normal(0, 1, gray.shape).astype(np.float32), (0, 0), 2) * 40 + 128
    assert not repeats_exactly(texture, region & background, tolerance=1.0)


def round_field(rng: np.random.Generator, side: int = 160, noise: float = 2.0) -> np.ndarray:
    """A round field of view on a dark surround: a lens's disc with its own smooth shading and noise."""
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    disc = cv2.GaussianBlur(
        (np.hypot(yy - (side - 1) / 2, xx - (side - 1) / 2) <= 0.45 * side).astype(np.float32), (0, 0), 1.5
    )
    shading = cv2.GaussianBlur(rng.normal(0, 1, (side, side)).astype(np.float32), (0, 0), 12) * 60
    return disc * (150 + shading) + 6 + rng.normal(0, noise, (side, side)).astype(np.float32)


def test_round_fields_agree_under_every_turn_and_a_copy_only_under_its_own():
    rng = np.random.default_rng(2)
    side = 160
    gray = np.concatenate([round_field(rng, side), round_field(rng, side)], axis=1)
    shift = np.array([[1.0, 0.0, side], [0.0, 1.0, 0.0]])  # left field -> right field
    region = np.zeros((side, side), bool)
    region[8:-8, 8:-8] = True
    rim = np.abs(np.hypot(*np.mgrid[0:side, 0:side] - (side - 1) / 2) - 0.45 * side) <= 3
    assert symmetric_lookalike(gray, shift, region, rim, (0, side), ratio=0.6)
    copied = gray.copy()
    copied[:, side:] = gray[:, :side] + rng.normal(0, 0.7, (side, side))  # a copy, with some compression error
    assert not symmetric_lookalike(copied, shift, region, region, (0, side), ratio=0.6)
    assert not symmetric_lookalike(copied, shift, region, rim, (0, side), ratio=0.6)  # its rim too


@pytest.mark.parametrize("index", [10, 12, 18])
def test_round_fields_of_view_after_jpeg_are_not_claimed(params, index):
    """JPEG raises what a copy may differ by; the rims of round fields of view then agree across panels."""
    scene = make_scene(case_rng(small_config().seed, "test", index), small_config(), "vignette")
    result = match_image(jpeg_roundtrip(scene.authentic, 74, gray=False), params)
    assert not result.operations, [v for v in result.candidates if v.accepted]


def test_a_copy_on_a_porous_membrane_after_jpeg_is_found_and_the_membrane_alone_is_not(params):
    """Stained cells on a membrane whose pores form an exact lattice: the pores between the cells agree at every
    period (a pattern), a copied patch of cells does so only once (a copy)."""
    image = render_transwell(np.random.default_rng(7), 320, 420).image
    forged = image.copy()
    forged[200:280, 290:390] = image[30:110, 40:140]
    truth = np.zeros(image.shape[:2], bool)
    truth[200:280, 290:390] = truth[30:110, 40:140] = True
    assert_one_copy_after_jpeg(params, image, forged, truth, 80)

"""Panel-level duplicates (issue 12): whole panels copied under flips/turns, after JPEG, zoomed; panels
that are alike but not copied; panel finding without gutters; the JPEG-ghost noise level."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from models.matcher import MatcherParams, match_image
from models.matcher.panelpairs import masked_zncc, pair_shape, transform_array
from models.matcher.panels import find_panels
from models.matcher.prepare import prepare
from models.matcher.residual import compression_error, jpeg_quality
from shared.config import param
from shared.metric import of1_masks
from shared.synth.case import jpeg_roundtrip
from shared.synth.config import case_rng
from shared.synth.scenarios import make_scene, scanned_blot
from tests import matcher_figures as figures
from tests.synth_fixtures import small_config

PH, PW, GUTTER, MARGIN = 90, 300, 12, 10


@pytest.fixture(scope="module")
def params() -> MatcherParams:
    return MatcherParams.from_dict(param("matcher"))


def blot_grid(rows: int = 4, cols: int = 2, seed: int = 3) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """A white page with ``rows x cols`` scanned-looking blot panels (each its own strip)."""
    rng = np.random.default_rng(seed)
    h = 2 * MARGIN + rows * PH + (rows - 1) * GUTTER
    w = 2 * MARGIN + cols * PW + (cols - 1) * GUTTER
    page = np.full((h, w, 3), 255, np.uint8)
    boxes = []
    for r in range(rows):
        for c in range(cols):
            y, x = MARGIN + r * (PH + GUTTER), MARGIN + c * (PW + GUTTER)
            page[y : y + PH, x : x + PW] = scanned_blot(rng, PH, PW)
            boxes.append((y, x, y + PH, x + PW))
    return page, boxes


def copy_panel(page: np.ndarray, boxes, src: int, dst: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``page`` with panel ``dst`` replaced by panel ``src`` under ``name``; returns it and the true mask."""
    forged = page.copy()
    sy0, sx0, sy1, sx1 = boxes[src]
    dy0, dx0, dy1, dx1 = boxes[dst]
    forged[dy0:dy1, dx0:dx1] = transform_array(page[sy0:sy1, sx0:sx1], name)
    mask = np.zeros(page.shape[:2], bool)
    mask[sy0:sy1, sx0:sx1] = mask[dy0:dy1, dx0:dx1] = True
    return forged, mask


def test_whole_mirrored_blot_panel_is_found_as_one_operation(params):
    page, boxes = blot_grid()
    forged, truth = copy_panel(page, boxes, 4, 6, "flip_h")  # panel e mirrored, whole, into panel g
    result = match_image(forged, params)
    assert len(result.operations) == 1
    assert of1_masks(result.operations, [truth]) >= 0.85
    assert not match_image(page, params).operations


def test_half_turn_into_the_panel_below_claims_both_panels(params):
    """A half turn about a point between two panels maps each onto the other (an involution, like a mirror
    inside one panel); the copy's panel holds the copy alone, so both panels make the operation."""
    page, boxes = blot_grid(seed=4)
    forged, truth = copy_panel(page, boxes, 0, 2, "rot180")  # panel a turned, whole, into panel c below it
    result = match_image(forged, params)
    assert len(result.operations) == 1
    assert of1_masks(result.operations, [truth]) >= 0.95


@pytest.mark.parametrize("quality", [72, 84])
def test_whole_panel_copy_is_found_after_jpeg(params, quality):
    page, boxes = blot_grid(seed=5)
    forged, truth = copy_panel(page, boxes, 0, 5, "flip_v")
    figures.assert_one_copy_after_jpeg(params, page, forged, truth, quality)


@pytest.mark.parametrize(("scenario", "index"), [("serial_frames", 11), ("loading_rows", 12), ("vignette", 13)])
def test_alike_but_uncopied_panels_are_not_claimed(params, scenario, index):
    config = small_config()
    scene = make_scene(case_rng(config.seed, "test", index), config, scenario)
    assert len(scene.panels) >= 2
    result = match_image(scene.authentic, params)
    assert not result.operations, [v for v in result.candidates if v.accepted]


def test_masked_correlation_finds_a_partial_overlap_and_nothing_in_unrelated_texture():
    rng = np.random.default_rng(0)
    scene = 100 + 50 * cv2.GaussianBlur(rng.normal(0, 1, (60, 110)).astype(np.float32), (0, 0), 2)
    a, b = scene[:, :64], scene[:, 40:104]  # two fields of view sharing 24 columns
    ones = np.ones_like(a)
    score, dy, dx, overlap = masked_zncc((a, ones), (b, ones), (128, 128), 300)
    assert score > 0.99 and (dy, dx) == (0, 40) and overlap == 60 * 24
    other = 100 + 50 * cv2.GaussianBlur(rng.normal(0, 1, (60, 64)).astype(np.float32), (0, 0), 2)
    assert masked_zncc((a, ones), (other, ones), (128, 128), 1000)[0] < 0.8


def test_masked_correlation_keeps_a_faint_blots_precision_on_a_bright_background():
    """ZNCC from float32 FFT sums must not lose a faint texture's variance (std 1.5 on grey 230) to rounding:
    at every shift it agrees with a float64 computation over the overlap, and a rectangular FFT shape that
    just holds every shift gives the same answer as a large square one."""
    rng = np.random.default_rng(3)
    scene = 230 + 1.5 * rng.normal(0, 1, (40, 90)).astype(np.float32)
    a, b = scene[:, :50], np.ascontiguousarray(scene[:, 30:80][::-1, ::-1]) + 0.3 * rng.normal(0, 1, (40, 50))
    b = b.astype(np.float32)
    ones = np.ones_like(a)
    moving = np.ascontiguousarray(b[::-1, ::-1])  # undo the turn: the copy lies on columns 30-49 of a
    score, dy, dx, overlap = masked_zncc((a, ones), (moving, ones), pair_shape(a.shape, moving.shape), 200)
    assert (dy, dx, overlap) == (0, 30, 40 * 20)
    fa, fb = a[:, 30:50].astype(np.float64), moving[:, :20].astype(np.float64)
    expected = np.corrcoef(fa.ravel(), fb.ravel())[0, 1]
    assert abs(score - expected) < 1e-4
    square = masked_zncc((a, ones), (moving, ones), (256, 256), 200)
    assert square[1:] == (dy, dx, overlap) and abs(square[0] - score) < 1e-4


def test_touching_panels_are_split_at_their_seams(params):
    rng = np.random.default_rng(1)
    tiles = [scanned_blot(rng, 80, 260) for _ in range(3)]
    figure = np.concatenate(tiles, axis=0)  # three strips, no gutter between them
    layout = find_panels(prepare(figure, params.image), params.panels)
    assert [p.box for p in layout.panels] == [(0, 0, 80, 260), (80, 0, 160, 260), (160, 0, 240, 260)]


def test_jpeg_quality_is_seen_only_in_jpeg_figures_and_its_error_measured():
    rng = np.random.default_rng(2)
    gray = cv2.GaussianBlur(rng.normal(128, 40, (300, 300)).astype(np.float32), (0, 0), 1.5)
    image = np.repeat(np.clip(gray, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)
    mask = np.ones(gray.shape, bool)
    assert jpeg_quality(image[:, :, 0].astype(np.float32), mask) is None
    for quality in (72, 90):
        for grey_file in (True, False):
            jpeg = jpeg_roundtrip(image, quality, gray=grey_file)
            seen = jpeg_quality(cv2.cvtColor(jpeg, cv2.COLOR_RGB2GRAY).astype(np.float32), mask)
            assert seen is not None and abs(seen - quality) <= 2
        error = float(np.abs(jpeg[:, :, 0].astype(np.float32) - image[:, :, 0]).mean())
        assert compression_error(image[:, :, 0].astype(np.float32), quality).mean() == pytest.approx(error, rel=0.3)


def test_tiny_exact_copy_of_an_object_is_found(params):

    image = figures.texture("immunohistochemistry", (600, 600), seed=4)
    yy, xx = np.mgrid[0:16, 0:16]
    blob = (yy - 7.5) ** 2 + (xx - 7.5) ** 2 <= 7.5**2  # about 180 px: 0.05 % of the image
    forged = image.copy()
    forged[400:416, 100:116][blob] = image[120:136, 300:316][blob]
    truth = np.zeros(image.shape[:2], bool)
    truth[120:136, 300:316] = blob
    truth[400:416, 100:116] |= blob
    result = match_image(forged, params)
    assert len(result.operations) == 1
    assert of1_masks(result.operations, [truth]) >= 0.5
    assert not match_image(image, params).operations


def test_panel_pair_refinement_recovers_a_zoom_between_coarse_steps():
    """The thumbnail search places a zoomed copy to within a zoom step; ECC over the copy's pixels must then
    recover the exact transform (a 1 % scale error misplaces a 400 px panel's far end by 4 px)."""
    from models.matcher.panelpairs import refine_affine

    rng = np.random.default_rng(7)
    page = np.full((400, 700), 255, np.float32)
    page[20:180, 20:340] = scanned_blot(rng, 160, 320)[:, :, 0]
    truth = np.array([[1.27, 0.0, 330.0], [0.0, 1.27, 170.0]])  # crop of panel 1 zoomed into x 360-680, y 195-380
    copy = cv2.warpAffine(page, truth, (700, 400), flags=cv2.INTER_CUBIC)
    region = np.zeros(page.shape, bool)
    region[195:380, 360:680] = True
    page[region] = copy[region]
    start = truth + np.array([[0.015, 0.0, -4.0], [0.0, -0.01, 3.0]])
    found = refine_affine(page, start, region)
    corners = np.array([[360.0, 195.0, 1.0], [680.0, 380.0, 1.0]])
    inverse = lambda a: np.linalg.inv(np.vstack([a, [0, 0, 1]]))[:2]  # noqa: E731
    assert np.abs(corners @ inverse(found).T - corners @ inverse(truth).T).max() < 0.5


def test_zoomed_blot_panel_copy_is_found(params):
    page, boxes = blot_grid(rows=3, cols=2, seed=9)
    sy0, sx0 = boxes[2][:2]
    dy0, dx0, dy1, dx1 = boxes[5]
    crop = page[sy0 + 10 : sy0 + 10 + 70, sx0 + 30 : sx0 + 30 + 233]  # 78 % of panel c ...
    forged = page.copy()
    forged[dy0:dy1, dx0:dx1] = cv2.resize(crop, (dx1 - dx0, dy1 - dy0), interpolation=cv2.INTER_CUBIC)  # ... fills f
    truth = np.zeros(page.shape[:2], bool)
    truth[sy0 + 10 : sy0 + 80, sx0 + 30 : sx0 + 263] = truth[dy0:dy1, dx0:dx1] = True
    result = match_image(forged, params)
    assert len(result.operations) == 1
    assert of1_masks(result.operations, [truth]) >= 0.8


@pytest.mark.parametrize("quality", [78, 86])
def test_copy_in_a_colour_jpeg_is_judged_with_the_chroma_error_of_that_jpeg(params, quality):
    """Colour JPEG stores chroma at half resolution: a copy's colour channels stray from their source by more
    than its grey image does, by what the figure's own compression explains (not a channel beside its merge)."""
    from shared.synth.scenarios import micro_panel

    image = micro_panel(np.random.default_rng(5), "fluorescence", 300, 400)
    forged = image.copy()
    forged[180:280, 260:380] = image[30:130, 40:160][::-1]
    truth = np.zeros(image.shape[:2], bool)
    truth[180:280, 260:380] = truth[30:130, 40:160] = True
    figures.assert_one_copy_after_jpeg(params, image, forged, truth, quality)


@pytest.mark.parametrize("texture", ["immunohistochemistry", "histology"])
def test_turned_object_copy_is_found_after_jpeg(params, texture):
    """A JPEG'd copy differs from its source by two compression errors, which moves its patch descriptors by
    about what that error is over the patch's contrast; the dense branch must still count it as near-exact."""
    from shared.synth.scenarios import micro_panel

    if texture == "histology":
        image = micro_panel(np.random.default_rng(0), "histology", 220, 600)
    else:
        image = figures.texture(texture, (220, 600), seed=0)
    forged = image.copy()
    forged[140:188, 400:448] = np.rot90(image[30:78, 100:148])
    truth = np.zeros(image.shape[:2], bool)
    truth[140:188, 400:448] = truth[30:78, 100:148] = True
    figures.assert_one_copy_after_jpeg(params, image, forged, truth, 77)


def band_copied_onto_background(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(strip, forged, truth): the darkest band window of a scanned blot strip pasted onto its flattest stretch of
    background (a smooth band with little grain: after JPEG it holds too few samples of detail on its own)."""
    h, w, bh, bw = 140, 300, 24, 44
    image = scanned_blot(np.random.default_rng(seed), h, w)
    dark = cv2.boxFilter(255 - image[:, :, 0].astype(np.float32), -1, (bw, bh))
    inner = dark[bh:-bh, bw:-bw]
    y, x = np.unravel_index(np.argmax(inner), inner.shape)
    y0, x0 = y + bh - bh // 2, x + bw - bw // 2
    dark[:bh], dark[-bh:], dark[:, :bw], dark[:, -bw:] = np.inf, np.inf, np.inf, np.inf
    dark[max(0, y0 - bh) : y0 + 2 * bh, max(0, x0 - bw) : x0 + 2 * bw] = np.inf
    y, x = np.unravel_index(np.argmin(dark), dark.shape)
    y1, x1 = y - bh // 2, x - bw // 2
    forged = image.copy()
    forged[y1 : y1 + bh, x1 : x1 + bw] = image[y0 : y0 + bh, x0 : x0 + bw]
    truth = np.zeros((h, w), bool)
    truth[y1 : y1 + bh, x1 : x1 + bw] = truth[y0 : y0 + bh, x0 : x0 + bw] = True
    return image, forged, truth


@pytest.mark.parametrize(("seed", "quality"), [(0, 80), (3, 90)])
def test_smooth_band_copy_after_jpeg_agrees_low_passed_within_the_jpeg_error(params, seed, quality):
    """JPEG erases a band's grain, so its copy holds too few samples of detail to be told from a look-alike by
    its residual; low-passed, it still agrees with its source within what the two JPEG errors leave."""
    image, forged, truth = band_copied_onto_background(seed)
    figures.assert_one_copy_after_jpeg(params, image, forged, truth, quality)
    verify_off = {**param("matcher")["verify"], "jpeg_lowpass_ratio": 0.0}
    off = MatcherParams.from_dict({**param("matcher"), "verify": verify_off})
    assert not match_image(jpeg_roundtrip(forged, quality, gray=False), off).operations  # the rule is what finds it


@pytest.mark.parametrize("quality", [75, 85])
def test_alike_bands_and_hard_negatives_after_jpeg_are_not_claimed(params, quality):
    """The JPEG low-pass route accepts copies with little detail: near-identical bands of one strip (drawn
    alike, each with its own grain and scan noise) and the compound hard negatives must still not pass it.
    (At q88 and q92 panel-pair candidates that agree exactly are claimed in these figures with the route on
    or off: not this route's doing, left to its own issue.)"""
    from tests.test_matcher import compound

    strips = [scanned_blot(np.random.default_rng(k), 90, 420, seed=40 + k) for k in range(3)]
    figure, _ = figures.grid_figure(strips, 1)
    for image in (figure, compound()[0]):
        result = match_image(jpeg_roundtrip(image, quality, gray=False), params)
        assert not result.operations, [(v.origin, v.reason, v.samples) for v in result.candidates if v.accepted]

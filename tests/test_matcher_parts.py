"""The matcher's parts: mirrored descriptors, dense feature transforms, 2NN gaps, panels, masking,
verification, operations and the parameter check."""

import cv2
import numpy as np
import pytest

from models.matcher.config import MatcherParams
from models.matcher.dense import DIHEDRAL, dense_candidates, feature_transform, patch_features
from models.matcher.geometry import Candidate, describe
from models.matcher.keypoints import gap_accept, mirror_descriptors, root_sift
from models.matcher.masking import content_mask
from models.matcher.operations import assemble
from models.matcher.panels import find_panels
from models.matcher.pipeline import match_image
from models.matcher.prepare import prepare
from models.matcher.verify import VerifiedPair, VerifyContext, verify
from shared.config import param
from shared.metric import of1_masks
from tests import matcher_figures as figures


@pytest.fixture(scope="module")
def params() -> MatcherParams:
    return MatcherParams.from_dict(param("matcher"))


def test_mirrored_descriptors_match_sift_on_the_mirrored_image():
    gray = cv2.cvtColor(figures.texture("immunohistochemistry", (300, 300), 0), cv2.COLOR_RGB2GRAY)
    sift = cv2.SIFT_create()
    kps, desc = sift.detectAndCompute(gray, None)
    mirrored_kps, mirrored_desc = sift.detectAndCompute(np.ascontiguousarray(gray[:, ::-1]), None)
    width = gray.shape[1]
    pts = np.array([k.pt for k in kps])
    mirrored_pts = np.array([(width - 1 - k.pt[0], k.pt[1]) for k in mirrored_kps])
    size = np.array([k.size for k in kps])
    mirrored_size = np.array([k.size for k in mirrored_kps])
    pairs = [
        (i, j)
        for i in range(len(kps))
        for j in [int(np.argmin(np.abs(mirrored_pts - pts[i]).sum(axis=1)))]
        if np.abs(mirrored_pts[j] - pts[i]).max() < 0.6 and abs(mirrored_size[j] - size[i]) < 0.05
    ]
    assert len(pairs) > 50
    i, j = np.array(pairs).T
    ours = mirror_descriptors(root_sift(desc[i]))
    theirs = root_sift(mirrored_desc[j])
    unmirrored = root_sift(desc[i])
    close = np.linalg.norm(ours - theirs, axis=1)
    assert np.median(close) < 0.1
    assert np.median(close) < 0.25 * np.median(np.linalg.norm(unmirrored - theirs, axis=1))


@pytest.mark.parametrize("name", sorted(DIHEDRAL))
def test_dense_features_of_a_transformed_image_are_the_transformed_features(name):
    gray = cv2.cvtColor(figures.texture("immunohistochemistry", (64, 64), 1), cv2.COLOR_RGB2GRAY).astype(np.float32)
    linear = np.array(DIHEDRAL[name], float)
    # image J(D x) = I(x) about the centre: J = I warped by D
    centre = np.array([31.5, 31.5])
    affine = np.hstack([linear, (centre - linear @ centre)[:, None]])
    moved = cv2.warpAffine(gray, affine, (64, 64), flags=cv2.INTER_NEAREST)
    n = 7
    feats, _ = patch_features(gray, n)
    moved_feats, _ = patch_features(moved, n)
    for x, y in [(20, 25), (30, 40), (40, 22)]:
        mx, my = np.rint(linear @ np.array([x, y]) + affine[:, 2]).astype(int)
        expected = feature_transform(name, n) @ feats[y, x]
        assert np.allclose(moved_feats[my, mx], expected, atol=1e-4)


def test_generalised_2nn_accepts_copies_and_rejects_patterns():
    inf = np.inf
    dist = np.array(
        [
            [0.05, 0.60, 0.70, 0.80],  # one copy
            [0.05, 0.07, 0.60, 0.70],  # source and two copies
            [0.05, 0.06, 0.07, 0.08],  # repeated pattern: no gap
            [0.50, 0.55, 0.60, 0.65],  # nothing distinctive
            [0.00, 0.00, 0.00, 0.00],  # exact repeats (float noise must not make a gap)
            [0.10, inf, inf, inf],  # only one neighbour at all
        ]
    )
    accepted = gap_accept(dist, ratio=0.6, max_copies=3)
    assert accepted.tolist() == [
        [True, False, False],
        [True, True, False],
        [False, False, False],
        [False, False, False],
        [False, False, False],
        [True, False, False],
    ]


def test_panels_of_a_compound_figure(params):
    panels = [
        figures.texture("immunohistochemistry", (150, 200), 1),
        figures.chart((150, 200), 2),
        figures.blot((60, 200), 4, 3),
    ]
    figure, origins = figures.grid_figure(panels, 3)
    layout = find_panels(prepare(figure, params.image), params.panels)
    assert layout.page_colour == (255, 255, 255)
    by_origin = {p.box[:2]: p.kind for p in layout.panels if p.area > 5000}
    assert by_origin[origins[0]] == "microscopy"
    assert by_origin[origins[2]] == "blot"
    kinds = {p.kind for p in layout.panels}
    assert "graphic" in kinds  # the chart (and the panel letters, where big enough)
    chart = [p for p in layout.panels if p.box[1] >= origins[1][1] and p.box[1] < origins[2][1] and p.area > 5000]
    assert chart and all(p.kind == "graphic" for p in chart)


def test_full_bleed_and_dark_images_are_one_panel(params):
    for image in (figures.texture("retina", (300, 400), 1), np.zeros((200, 200, 3), np.uint8)):
        image = image.copy()
        layout = find_panels(prepare(image, params.image), params.panels)
        assert layout.page_colour is None
        assert len(layout.panels) == 1 and layout.panels[0].box == (0, 0, *image.shape[:2])


def test_a_light_grainy_background_is_image_not_paper(params):
    rng = np.random.default_rng(3)
    grey = np.full((240, 320), 190.0) + rng.normal(0, 3.0, (240, 320))  # EM-like: light grey film grain ...
    for k in range(12):  # ... with dark organelles
        cv2.ellipse(grey, (int(rng.integers(20, 300)), int(rng.integers(20, 220))), (14, 8), 30.0 * k, 0, 360, 90.0, -1)
    image = np.repeat(np.clip(grey, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)
    layout = find_panels(prepare(image, params.image), params.panels)
    assert layout.page_colour is None
    assert len(layout.panels) == 1 and layout.panels[0].matchable


def test_an_untouched_copy_in_a_smooth_low_noise_blot_is_found(params):
    # nearly noise-free bands: the background around a copy agrees within the noise as well, so only
    # the pixels that repeat exactly may define the copy and judge the residual (judged on the whole
    # agreeing area, a mirrored pairing of the bands passed too and blurred the mask: F1 0.85)
    strip = figures.blot((120, 480), 6, seed=7, grain=0.3)
    forged, truth = figures.copy_region(strip, (30, 5), (60, 70), (30, 405))
    result = match_image(forged, params)
    assert len(result.operations) == 1
    assert of1_masks(result.operations, [truth]) >= 0.95


def test_text_and_scale_bars_inside_micrographs_are_masked(params):
    panel = figures.texture("immunohistochemistry", (200, 240), 1)
    figures.scale_bar(panel)
    figures.label(panel, "KD", (10, 30), 0.8, (255, 255, 255))
    figure, origins = figures.grid_figure([panel], 1)
    work = prepare(figure, params.image)
    layout = find_panels(work, params.panels)
    content, overlays = content_mask(work, layout, params.masking)
    y, x = origins[0]
    assert overlays[y + 200 - 12, x + 240 - 30]  # on the scale bar
    assert overlays[y + 22, x + 20]  # on the label
    assert content[y + 100, x + 120]  # plain tissue stays
    assert not content[y - 25 : y - 5, x : x + 30].any()  # the panel letter on the page


def test_verification_rejects_a_wrong_transform_and_accepts_the_right_one(params):
    tissue = figures.texture("immunohistochemistry", (300, 300), 2)
    forged, truth = figures.copy_region(tissue, (40, 40), (60, 60), (200, 180))
    work = prepare(forged, params.image)
    layout = find_panels(work, params.panels)
    content, _ = content_mask(work, layout, params.masking)
    ctx = VerifyContext(work, layout, content, params.verify, 14.0)
    src = np.array([[50.0, 50], [80, 60], [60, 85], [90, 90]])

    def candidate(shift):
        return Candidate(np.array([[1.0, 0, shift[0]], [0, 1.0, shift[1]]]), src, src + shift, "keypoints", 4, 0, 0)

    right = verify(candidate(np.array([140.0, 160.0])), ctx)
    assert right.accepted, right.reason
    assert of1_of(right, truth) >= 0.9
    wrong = verify(candidate(np.array([100.0, 160.0])), ctx)
    assert not wrong.accepted


def of1_of(pair: VerifiedPair, truth: np.ndarray) -> float:
    union = pair.src_mask | pair.dst_mask
    inter = (union & truth).sum()
    return 2 * inter / (union.sum() + truth.sum())


def test_dense_branch_finds_a_flipped_low_texture_copy(params):
    strip = figures.blot((80, 320), 5, seed=4)
    forged, _ = figures.copy_region(strip, (10, 8), (56, 50), (12, 200), "flip_h")
    work = prepare(forged, params.image)
    layout = find_panels(work, params.panels)
    content, _ = content_mask(work, layout, params.masking)
    found = dense_candidates(work, layout, content, params.dense, 14.0)
    flips = [c for c in found if c.extra["transform"] == "flip_h"]
    assert flips
    # the copy maps x -> (8 + 200 + 49) - x, y -> y + 2
    best = max(flips, key=lambda c: c.support)
    assert np.allclose(best.affine, [[-1, 0, 257], [0, 1, 2]], atol=1.5)


def pair_with(src_mask, dst_mask, confidence=0.9):
    cand = Candidate(np.eye(2, 3), np.zeros((1, 2)), np.zeros((1, 2)), "keypoints", 10, 0, 0)
    return VerifiedPair(cand, True, "ok", confidence, src_mask=src_mask, dst_mask=dst_mask)


def box_mask(y0, x0, y1, x1, shape=(100, 100)):
    mask = np.zeros(shape, bool)
    mask[y0:y1, x0:x1] = True
    return mask


def test_pairs_sharing_a_region_become_one_operation(params):
    a, b, c = box_mask(0, 0, 10, 10), box_mask(50, 50, 60, 60), box_mask(0, 80, 10, 90)
    far1, far2 = box_mask(80, 0, 90, 10), box_mask(80, 40, 90, 50)
    ops = assemble(
        [pair_with(a, b), pair_with(a, c), pair_with(b, c, 0.95), pair_with(far1, far2, 0.6)], params.operations
    )
    assert len(ops) == 2
    assert np.array_equal(ops[0].mask, a | b | c) and ops[0].confidence == 0.95
    assert np.array_equal(ops[1].mask, far1 | far2)


def test_transform_descriptions():
    assert describe(np.array([[1.0, 0, 5], [0, 1, 3]])) == "translation"
    assert describe(np.array([[-1.0, 0, 5], [0, 1, 3]])) == "flip"
    assert describe(np.array([[1.0, 0, 5], [0, -1, 3]])) == "flip"
    assert describe(np.array([[0.0, -1, 5], [1, 0, 3]])) == "rotation 90°"
    assert describe(np.array([[1.2, 0, 5], [0, 1.2, 3]])) == "scale 1.20"


def test_params_name_missing_unknown_and_mistyped_keys():
    values = param("matcher")
    broken = {**values, "verify": {k: v for k, v in values["verify"].items() if k != "window"}}
    with pytest.raises(ValueError, match=r"missing matcher\.verify\.window"):
        MatcherParams.from_dict(broken)
    with pytest.raises(ValueError, match=r"unknown matcher\.typo"):
        MatcherParams.from_dict({**values, "typo": 1})
    with pytest.raises(ValueError, match=r"matcher\.dense\.enabled must be true/false"):
        MatcherParams.from_dict({**values, "dense": {**values["dense"], "enabled": "yes"}})
    assert MatcherParams.from_dict(MatcherParams.from_dict(values).to_dict()) == MatcherParams.from_dict(values)

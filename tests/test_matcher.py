"""The matcher on controlled figures: copies found under every transform, hard negatives left alone,
one operation per source and its copies, any input format and size."""

import dataclasses
import json

import cv2
import numpy as np
import pytest

from models.matcher import FEATURE_NAMES, MatcherParams, match_image, prefixed_features
from shared.cli import main as cli_main
from shared.config import param
from shared.metric import of1_masks
from tests import matcher_figures as figures
from tests.conftest import write_png


@pytest.fixture(scope="module")
def params() -> MatcherParams:
    return MatcherParams.from_dict(param("matcher"))


@pytest.fixture(scope="module")
def tissue() -> np.ndarray:
    return figures.texture("immunohistochemistry", (480, 480), seed=1)


def score(result, truth) -> float:
    return of1_masks(result.operations, truth)


@pytest.mark.parametrize("kind", ["none", "flip_h", "flip_v", "rot90", "rot180"])
def test_copy_found_under_translation_flips_and_quarter_turns(params, tissue, kind):
    forged, truth = figures.copy_region(tissue, (60, 80), (70, 70), (320, 300), kind)
    result = match_image(forged, params)
    assert len(result.operations) == 1
    assert score(result, [truth]) >= 0.9


@pytest.mark.parametrize(("angle", "scale"), [(30, 1.0), (0, 1.2), (-15, 0.85)])
def test_copy_found_when_rotated_or_rescaled(params, tissue, angle, scale):
    forged, truth = figures.warp_copy(tissue, (150, 150), 48, (350, 340), angle, scale)
    result = match_image(forged, params)
    assert len(result.operations) == 1
    assert score(result, [truth]) >= 0.85


@pytest.mark.parametrize(
    "make",
    [
        lambda: figures.texture("immunohistochemistry", (480, 480), seed=1),
        lambda: figures.texture("retina", (500, 600), seed=2),
        lambda: figures.texture("astronaut", (480, 480), seed=3),
        lambda: figures.noise_texture((400, 500), seed=4),
    ],
    ids=["ihc", "retina", "photo", "noise"],
)
def test_authentic_images_are_not_flagged(params, make):
    result = match_image(make(), params)
    assert result.operations == []
    assert result.prob.max() < 0.5


def compound(seed: int = 0) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Micrographs with identical scale bars, two blots (one of near-identical bands), a chart with
    repeated digits and hatching, a dot lattice, panel letters."""
    panels = [
        figures.texture("immunohistochemistry", (220, 260), seed + 5),
        figures.texture("retina", (220, 260), seed + 6),
        figures.blot((70, 260), 5, seed + 7),
        figures.chart((220, 260), seed + 8),
        figures.texture("cell", (220, 260), seed + 9),
        figures.blot((70, 260), 5, seed + 10, same_bands=True),
        figures.stripes((220, 260)),
    ]
    for panel in (panels[0], panels[1], panels[4]):
        figures.scale_bar(panel)
    return figures.grid_figure(panels, 3)


def test_compound_figure_hard_negatives_are_not_flagged(params):
    figure, _ = compound()
    result = match_image(figure, params)
    assert result.operations == []
    assert result.features["n_panels"] >= 7
    assert result.features["n_graphic_panels"] >= 1


def test_every_candidate_gets_a_verdict(params, tissue):
    forged, _ = figures.copy_region(tissue, (30, 40), (70, 90), (180, 200))
    kept = [v for v in match_image(forged, params).candidates if v.accepted]
    assert kept and all(v.reason == "ok" and v.residual_grey < 1.0 and v.peak_ratio < 0.6 for v in kept)
    figure, _ = compound()  # hard negatives: whatever was considered was turned down, with a reason
    turned_down = match_image(figure, params).candidates
    assert turned_down and all(not v.accepted and v.reason not in ("", "ok") for v in turned_down)


def test_match_command_explains_each_candidate_in_its_json(tissue, tmp_path):
    forged, _ = figures.copy_region(tissue, (30, 40), (70, 90), (180, 200))
    image = write_png(tmp_path / "fig.png", forged)
    assert cli_main(["match", str(image), "--out", str(tmp_path / "out"), "--jobs", "1"]) == 0
    summary = json.loads((tmp_path / "out" / "fig.json").read_text())
    assert summary["verdict"] == "forged"
    assert summary["candidates"] and {"reason", "accepted", "transform", "origin"} <= set(summary["candidates"][0])
    assert any(c["accepted"] and c["reason"] == "ok" for c in summary["candidates"])


def test_copy_across_panels_of_a_compound_figure(params):
    figure, origins = compound()
    (ya, xa), (yb, xb) = origins[0], origins[4]
    forged, truth = figures.copy_region(figure, (ya + 40, xa + 50), (60, 80), (yb + 100, xb + 120))
    result = match_image(forged, params)
    assert len(result.operations) == 1
    assert score(result, [truth]) >= 0.9
    assert result.features["cross_panel"] == 1.0


def test_blot_band_copied_to_another_lane(params):
    figure, origins = compound()
    y, x = origins[2]
    forged, truth = figures.copy_region(figure, (y + 10, x + 5), (50, 50), (y + 10, x + 160))
    result = match_image(forged, params)
    assert len(result.operations) == 1
    assert score(result, [truth]) >= 0.75


def test_source_and_all_copies_form_one_operation(params, tissue):
    forged, first = figures.copy_region(tissue, (60, 80), (60, 60), (300, 300))
    forged, second = figures.copy_region(forged, (60, 80), (60, 60), (100, 380))
    result = match_image(forged, params)
    assert len(result.operations) == 1
    assert score(result, [first | second]) >= 0.9


def test_two_operations_are_two_instances(params, tissue):
    forged, first = figures.copy_region(tissue, (60, 80), (60, 60), (300, 300))
    forged, second = figures.copy_region(forged, (200, 40), (50, 50), (400, 100))
    result = match_image(forged, params)
    assert len(result.operations) == 2
    assert score(result, [first, second]) >= 0.9


def test_outputs_have_the_contracted_shapes(params, tissue):
    forged, truth = figures.copy_region(tissue, (60, 80), (70, 70), (320, 300))
    result = match_image(forged, params)
    assert result.prob.shape == forged.shape[:2] and result.prob.dtype == np.float32
    assert result.prob.min() >= 0.0 and result.prob.max() <= 1.0
    assert result.prob[truth].mean() > 0.5 > result.prob[~truth].mean()
    assert all(op.dtype == bool and op.shape == forged.shape[:2] for op in result.operations)
    assert list(result.features) == FEATURE_NAMES
    assert all(isinstance(v, float) and np.isfinite(v) for v in result.features.values())
    assert set(prefixed_features(result.features)) == {f"matcher_{n}" for n in FEATURE_NAMES}
    assert result.links and all(link.operation == 0 for link in result.links)
    (sx, sy), (cx, cy) = result.links[0].source, result.links[0].copy
    centres = {(115, 95), (335, 355)}  # (x, y) centres of source and copy
    found = {(round(sx, -1), round(sy, -1)), (round(cx, -1), round(cy, -1))}
    assert len(found) == 2 and all(min(abs(a - u) + abs(b - v) for u, v in centres) <= 20 for a, b in found)


def test_deterministic(params, tissue):
    forged, _ = figures.copy_region(tissue, (60, 80), (70, 70), (320, 300), "flip_h")
    first, second = match_image(forged, params), match_image(forged, params)
    assert len(first.operations) == len(second.operations) == 1
    assert np.array_equal(first.operations[0], second.operations[0])
    assert np.array_equal(first.prob, second.prob)
    assert first.features == second.features


def test_grey_rgb_and_rgba_inputs_agree(params, tissue):
    forged, truth = figures.copy_region(tissue, (60, 80), (70, 70), (320, 300))
    grey = forged[:, :, 1]
    rgba = np.dstack([np.repeat(grey[:, :, None], 3, axis=2), np.full(grey.shape, 255, np.uint8)])
    from_grey, from_rgba = match_image(grey, params), match_image(rgba, params)
    assert len(from_grey.operations) == 1 and score(from_grey, [truth]) >= 0.9
    assert np.array_equal(from_grey.operations[0], from_rgba.operations[0])


def test_tiny_images_are_authentic(params):
    for shape in [(1, 1, 3), (20, 300, 3), (31, 31)]:
        result = match_image(np.full(shape, 128, np.uint8), params)
        assert result.operations == [] and result.prob.shape == shape[:2]


def test_bad_input_is_rejected_with_a_clear_error(params):
    with pytest.raises(ValueError, match="uint8"):
        match_image(np.zeros((64, 64, 3), np.float32), params)
    with pytest.raises(ValueError, match="shape"):
        match_image(np.zeros((64, 64, 2), np.uint8), params)


def test_large_figure_is_matched_at_bounded_resolution_and_answered_at_full_size(params):
    small = dataclasses.replace(params, image=dataclasses.replace(params.image, max_pixels=250_000))
    big = figures.texture("retina", (1100, 1300), seed=5)
    forged, truth = figures.copy_region(big, (200, 200), (160, 200), (700, 900))
    result = match_image(forged, small)
    assert result.features["working_scale"] < 0.5
    assert result.prob.shape == forged.shape[:2]
    assert len(result.operations) == 1 and result.operations[0].shape == forged.shape[:2]
    assert score(result, [truth]) >= 0.85


def grained_field(side: int, seed: int) -> np.ndarray:
    """Smooth structure plus fine grain: downscaling averages the grain away, so a copy and its source,
    sampled at different phases, differ on the working image by about its (small) noise level."""
    rng = np.random.default_rng(seed)
    field = cv2.GaussianBlur(rng.normal(0, 1, (side // 4, side // 4)).astype(np.float32), (0, 0), 2)
    field = cv2.resize(field, (side, side), interpolation=cv2.INTER_CUBIC)
    field += cv2.GaussianBlur(rng.normal(0, 1, (side, side)).astype(np.float32), (0, 0), 1.5) * 0.5
    gray = np.clip((field - field.min()) / np.ptp(field) * 220 + 20, 0, 255).astype(np.uint8)
    return np.repeat(gray[:, :, None], 3, axis=2)


def test_a_copy_resampled_by_downscaling_is_confirmed_at_native_resolution(params):
    small = dataclasses.replace(params, image=dataclasses.replace(params.image, max_pixels=250_000))
    image = grained_field(1200, seed=0)
    forged, truth = figures.copy_region(image, (100, 100), (300, 300), (750, 800))
    result = match_image(forged, small)
    assert result.features["working_scale"] < 0.5
    assert len(result.operations) == 1
    assert score(result, [truth]) >= 0.8
    assert not match_image(image, small).operations  # the untouched field holds no copy


@pytest.mark.slow
def test_4000_pixel_figure(params):
    big = figures.texture("retina", (4000, 4000), seed=6)  # the 1411 px sample upscaled
    forged, _ = figures.copy_region(big, (500, 500), (300, 300), (2600, 3100))
    result = match_image(forged, params)
    assert result.prob.shape == (4000, 4000)
    assert result.features["working_scale"] < 0.5

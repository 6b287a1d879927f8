"""Authentic figures re-saved as JPEG (issue 12, precision): alike panels must not turn into copies once JPEG's
error widens what verification allows, while true copies re-saved the same way are still found."""

from __future__ import annotations

import numpy as np
import pytest

from models.matcher import MatcherParams, match_image
from shared.config import param
from shared.metric import of1_masks
from shared.synth.case import jpeg_roundtrip
from shared.synth.config import case_rng
from shared.synth.scenarios import make_scene, micro_panel
from tests import matcher_figures as figures
from tests.synth_fixtures import small_config


@pytest.fixture(scope="module")
def params() -> MatcherParams:
    return MatcherParams.from_dict(param("matcher"))


def with_verify(**changes) -> MatcherParams:
    return MatcherParams.from_dict({**param("matcher"), "verify": {**param("matcher")["verify"], **changes}})


def resampled_claims(result) -> list[str]:
    """Accepted candidates whose transform rescales or turns (not a flip/quarter turn + shift)."""
    return [v.transform for v in result.candidates if v.accepted and ("scale" in v.transform or "°" in v.transform)]


def test_drifting_serial_frames_re_saved_are_not_a_resampled_copy(params):
    """Consecutive frames of one field (drift, slight deformation, own noise) re-saved as JPEG: a slight rescale
    lines two frames up about as badly as a shift does (the JPEG error widens the allowance, and a resampled fit
    has no noise test), so it must not be claimed as a rescaled copy."""
    config = small_config()
    scene = make_scene(case_rng(config.seed, "test", 1), config, "serial_frames")
    resaved = jpeg_roundtrip(scene.authentic, 70, gray=False)
    colour_off = {"colour_tail_ratio": 0.0, "colour_region_tail_ratio": 0.0}  # (the colour tails turn it down too)
    assert resampled_claims(match_image(resaved, with_verify(resample_gain=1e9, **colour_off)))  # the case
    assert not resampled_claims(match_image(resaved, with_verify(**colour_off)))
    assert not resampled_claims(match_image(resaved, params))


@pytest.mark.parametrize(("angle", "scale"), [(0.0, 0.94), (9.0, 1.0), (0.0, 1.25)])
def test_resampled_copies_re_saved_are_still_found(params, angle, scale):
    """A copy that was rescaled or turned and then saved as JPEG holds the same pixels up to interpolation and the
    two JPEG errors: far closer to its source than the nearest plain shift of it, even for a slight rescale."""
    image = micro_panel(np.random.default_rng(2), "histology", 260, 520)
    forged, truth = figures.warp_copy(image, (90.0, 120.0), 55, (400.0, 130.0), angle, scale)
    result = match_image(jpeg_roundtrip(forged, 80, gray=False), params)
    assert resampled_claims(result), [(v.transform, v.reason) for v in result.candidates]
    assert len(result.operations) == 1
    assert of1_masks(result.operations, [truth]) >= 0.7


def channels_and_merge(seed: int, n_channels: int) -> np.ndarray:
    """A row of fluorescence channel panels, each alone, then their merge (genuinely the same content)."""
    from shared.synth.blocks import _channel_panels

    panels = _channel_panels(np.random.default_rng(seed), 180, 220, n_channels, None)
    return figures.grid_figure([p.image for p in panels], len(panels))[0]


@pytest.mark.parametrize(("seed", "quality", "region_only"), [(5, 85, False), (100, 75, True)])
def test_a_channel_beside_its_merge_re_saved_is_not_a_copy(params, seed, quality, region_only):
    """After JPEG a channel panel and the merge it is part of agree in grey and, at the median, in every colour
    channel (the chroma error hides the difference); the other channel's objects the merge adds still stand out
    in the tail of that channel's residual, far beyond the figure's own colour JPEG errors at the same places:
    inside the agreeing core, or (``region_only``) only beside it, in the region claimed with it."""
    resaved = jpeg_roundtrip(channels_and_merge(seed, 2), quality, gray=False)
    off = with_verify(colour_tail_ratio=0.0, colour_region_tail_ratio=0.0)
    assert match_image(resaved, off).operations  # the case the rules are for
    if region_only:  # (the region tail is off by default: it also turns down some blended true copies)
        assert match_image(resaved, params).operations
        params = with_verify(colour_region_tail_ratio=4.0)
    result = match_image(resaved, params)
    assert not result.operations, [(v.transform, v.reason) for v in result.candidates if v.accepted]


def test_a_colour_copy_inside_a_merge_re_saved_is_found(params):
    """A true copy in the merge panel keeps its colours: its channel residuals' tails are those of two JPEG errors."""
    figure = channels_and_merge(5, 2)
    forged = figure.copy()
    y, x = 50, 30 + 2 * (220 + 12)  # the merge panel (third of the row)
    forged[y + 90 : y + 170, x + 120 : x + 210] = figure[y + 5 : y + 85, x + 10 : x + 100]
    truth = np.zeros(figure.shape[:2], bool)
    truth[y + 90 : y + 170, x + 120 : x + 210] = truth[y + 5 : y + 85, x + 10 : x + 100] = True
    result = match_image(jpeg_roundtrip(forged, 85, gray=False), params)
    assert len(result.operations) == 1, [(v.transform, v.reason) for v in result.candidates]
    assert of1_masks(result.operations, [truth]) >= 0.7

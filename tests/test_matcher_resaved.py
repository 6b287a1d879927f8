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
    assert resampled_claims(match_image(resaved, with_verify(resample_gain=1e9)))  # the case the rule is for
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

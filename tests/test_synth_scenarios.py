"""Targeted scenario cases (issue 12): whole/zoomed/overlapping panel copies, tiny copies, hard negatives."""

from __future__ import annotations

import numpy as np
import pytest

from shared.synth.config import case_rng
from shared.synth.forge import geometric_transform
from shared.synth.scenarios import FORGED, NEGATIVE, make_scene, scenario_of
from tests.synth_fixtures import small_config


@pytest.mark.parametrize("scenario", FORGED)
def test_forged_scenarios_change_only_their_operation_and_copy_the_source(scenario):
    config = small_config()
    for index in range(3):
        scene = make_scene(case_rng(config.seed, "test", 1000 + index), config, scenario)
        op = scene.operations[0]
        changed = (scene.forged != scene.authentic).any(axis=2)
        assert changed.any() and not (changed & ~op.mask).any()
        assert not (op.source_mask & op.copies[0].mask).any()
        area = op.mask.mean()
        if scenario == "tiny_copy":
            assert area < 2 * 0.002 * len(op.copies) + 0.002  # source and copies each below 0.2 % of the image
        for copy in op.copies:
            if copy.geometric in ("translate", "hflip", "vflip", "rot90", "rot180", "rot270") and not copy.photometric:
                y0, x0, y1, x1 = op.src_box
                patch, mask = geometric_transform(
                    scene.authentic[y0:y1, x0:x1], op.source_mask[y0:y1, x0:x1], copy.geometric
                )
                dy0, dx0, dy1, dx1 = copy.dst_box
                assert np.array_equal(scene.forged[dy0:dy1, dx0:dx1][mask], patch[mask])


def test_whole_panel_copy_covers_two_whole_panels():
    config = small_config()
    scene = make_scene(case_rng(config.seed, "test", 7), config, "panel_copy")
    op = scene.operations[0]
    boxes = {p.box for p in scene.panels}
    assert op.src_box in boxes and op.copies[0].dst_box in boxes


@pytest.mark.parametrize("scenario", NEGATIVE)
def test_hard_negative_scenarios_are_alike_but_not_copies(scenario):
    config = small_config()
    scene = make_scene(case_rng(config.seed, "test", 2000), config, scenario)
    assert scene.forged is None and not scene.operations and scene.negatives[0].kind == scenario
    crops = [scene.authentic[y0:y1, x0:x1].astype(np.float32) for y0, x0, y1, x1 in (p.box for p in scene.panels)]
    # no two panels are pixel copies of each other under any flip or turn
    for a in range(len(crops)):
        for b in range(a + 1, len(crops)):
            for k in range(4):
                for flip in (False, True):
                    other = np.rot90(crops[b][:, ::-1] if flip else crops[b], k)
                    if other.shape == crops[a].shape:
                        assert np.abs(other - crops[a]).mean() > 0.5


def test_scenarios_are_a_share_of_the_split_and_depend_only_on_the_case():
    config = small_config()
    picks = [scenario_of(config, "test", i, i % 2 == 0) for i in range(200)]
    share = config.extra["scenarios"]["share"]["test"]
    assert abs(sum(bool(s) for s in picks) / 200 - share) < 0.05
    assert picks == [scenario_of(config, "test", i, i % 2 == 0) for i in range(200)]
    assert all(s in FORGED for i, s in enumerate(picks) if s and i % 2 == 0)
    assert all(s in NEGATIVE for i, s in enumerate(picks) if s and i % 2 == 1)
    assert not any(scenario_of(config, "train", i, False) for i in range(100))  # twins are forged: no negatives

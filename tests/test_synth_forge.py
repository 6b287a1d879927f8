"""Copy-move ground truth: one channel per operation, exact copies, disjoint regions, hard negatives."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from shared.synth.case import make_case
from shared.synth.forge import geometric_transform
from tests.synth_fixtures import sample_cases, small_config

CASES = sample_cases()
FORGED = [c for c in CASES if c.forged is not None]


def test_every_forged_case_has_one_to_three_operations_with_one_to_three_copies():
    assert len(FORGED) >= 30
    for case in FORGED:
        assert 1 <= len(case.operations) <= 3
        for op in case.operations:
            assert 1 <= len(op.copies) <= 3


def test_mask_channels_are_operations_source_plus_copies():
    for case in FORGED:
        masks = case.masks
        assert masks.dtype == np.uint8 and masks.shape == (len(case.operations), *case.forged.shape[:2])
        for channel, op in zip(masks, case.operations, strict=True):
            union = op.source_mask.copy()
            for copy in op.copies:
                union |= copy.mask
            assert np.array_equal(channel.astype(bool), union)
            assert set(np.unique(channel)) == {0, 1}


def test_sources_and_copies_never_overlap_within_or_across_operations():
    for case in FORGED:
        regions = [m for op in case.operations for m in (op.source_mask, *(c.mask for c in op.copies))]
        total = np.sum([r.astype(np.int32) for r in regions], axis=0)
        assert total.max() == 1, f"{case.split} {case.index}: regions overlap"


def jpeg_free_copies():
    """``(case, source pixels, source mask, copy)`` for every copy of a forged case saved without JPEG."""
    for case in FORGED:
        if case.forged_jpeg:
            continue
        for op in case.operations:
            y0, x0, y1, x1 = op.src_box
            for copy in op.copies:
                yield case, case.authentic_clean[y0:y1, x0:x1], op.source_mask[y0:y1, x0:x1], copy


def assert_copy_is_the_transformed_source(case, source, local, copy, **params) -> np.ndarray:
    """The copy's mask and pixels are the source warped by its geometric transform; returns the mask."""
    patch, mask = geometric_transform(source, local, copy.geometric, **params)
    dy0, dx0, dy1, dx1 = copy.dst_box
    assert np.array_equal(mask, copy.mask[dy0:dy1, dx0:dx1])
    assert np.array_equal(case.forged[dy0:dy1, dx0:dx1][mask], patch[mask])
    return mask


def test_exact_copies_equal_the_transformed_source_pixel_for_pixel():
    checked = 0
    for case, source, local, copy in jpeg_free_copies():
        if copy.exact:
            assert_copy_is_the_transformed_source(case, source, local, copy)
            checked += 1
    assert checked >= 20


def test_resampled_copies_equal_the_warped_source():
    checked = 0
    for case, source, local, copy in jpeg_free_copies():
        if copy.geometric not in ("rotate", "scale") or copy.photometric or "resize" in copy.params:
            continue
        mask = assert_copy_is_the_transformed_source(case, source, local, copy, **copy.params)
        scale = copy.params["scale"]
        assert 0.8 <= scale <= 1.25
        assert mask.sum() == pytest.approx(local.sum() * scale**2, rel=0.25, abs=30)
        checked += 1
    assert checked >= 3


def test_forged_differs_from_its_figure_only_inside_the_mask():
    checked = 0
    for case in FORGED:
        if case.forged_jpeg:
            continue
        changed = (case.forged != case.authentic_clean).any(axis=2)
        assert not (changed & ~case.masks.any(axis=0)).any()
        assert changed.any(), "a forgery must change the image"
        checked += 1
    assert checked >= 20


def test_every_copy_visibly_changes_where_it_lands():
    config = small_config()
    for case in FORGED:
        if case.forged_jpeg:
            continue
        for op in case.operations:
            for copy in op.copies:
                before = case.authentic_clean[copy.mask].astype(np.float32).mean(axis=1)
                after = case.forged[copy.mask].astype(np.float32).mean(axis=1)
                assert np.abs(after - before).mean() >= config.min_visible_change * 0.99


def test_region_sizes_span_tiny_to_large_and_respect_the_floor():
    config = small_config()
    fractions = []
    for case in FORGED:
        area = case.forged.shape[0] * case.forged.shape[1]
        fractions += [op.source_mask.sum() / area for op in case.operations]
    assert min(fractions) >= 0.5 * config.area_frac[0] * 0.6  # floor, allowing the 0.8 scale transform
    assert min(fractions) < 0.01 and max(fractions) > 0.02


def test_hard_negatives_are_present_and_genuinely_repeated_in_authentic_figures():
    with_boxes = 0
    for case in CASES:
        image = case.authentic_clean.astype(np.float32)
        for negative in case.negatives:
            if negative.boxes is None:
                continue
            (a0, a1, a2, a3), (b0, b1, b2, b3) = negative.boxes
            assert (a2 - a0, a3 - a1) == (b2 - b0, b3 - b1), negative
            overlap = a0 < b2 and b0 < a2 and a1 < b3 and b1 < a3
            assert not overlap, negative
            # near-identical up to grain: compare lightly smoothed crops
            crop_a = cv2.GaussianBlur(image[a0:a2, a1:a3], (0, 0), 1.5)
            crop_b = cv2.GaussianBlur(image[b0:b2, b1:b3], (0, 0), 1.5)
            diff = np.abs(crop_a - crop_b).mean()
            assert diff <= 12, f"{negative.kind}: crops differ by {diff:.1f} gray levels"
            with_boxes += 1
    compound = [c for c in CASES if c.compound]
    assert sum(bool(c.negatives) for c in compound) >= 0.8 * len(compound)
    assert with_boxes >= 15
    kinds = {n.kind for c in CASES for n in c.negatives}
    assert {"repeated_labels", "similar_bands", "scale_bars"} <= kinds


def test_test_split_mixes_forged_and_separate_authentic_figures():
    tests = [c for c in CASES if c.split == "test"]
    forged = sum(c.forged is not None for c in tests)
    assert 0.2 * len(tests) <= forged <= 0.8 * len(tests)
    assert all((c.forged is None) != (c.authentic is None) for c in tests)
    assert sum(c.compound for c in tests) >= 0.7 * len(tests)


def test_compound_figures_hold_two_to_twelve_panels_single_ones_fill_the_image():
    for case in CASES:
        image = case.authentic_clean
        if case.compound:
            assert 2 <= case.n_panels <= 12
        else:
            assert case.n_panels >= 1
        config = small_config()
        assert config.min_side <= min(image.shape[:2]) and max(image.shape[:2]) <= config.max_side


def test_a_case_depends_only_on_seed_split_and_index():
    config = small_config()
    a, b = make_case(config, "train", 3), make_case(config, "train", 3)
    assert np.array_equal(a.forged, b.forged) and np.array_equal(a.authentic, b.authentic)
    other = make_case(small_config(n_train=50), "train", 3)  # other counts, same case
    assert np.array_equal(a.forged, other.forged)


@pytest.mark.parametrize("name", ["hflip", "vflip", "rot90", "rot180", "rot270"])
def test_exact_transforms_are_pure_index_permutations(name):
    rng = np.random.default_rng(0)
    patch = rng.integers(0, 255, (7, 11, 3), dtype=np.uint8)
    mask = rng.random((7, 11)) < 0.6
    out, out_mask = geometric_transform(patch, mask, name)
    assert sorted(out.reshape(-1, 3).tolist()) == sorted(patch.reshape(-1, 3).tolist())
    assert out_mask.sum() == mask.sum()
    assert out.shape[:2] == out_mask.shape

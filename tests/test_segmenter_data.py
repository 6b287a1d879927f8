"""Training views: always size x size, targets honest about what the crop shows, seeded sampling."""

import numpy as np
import pandas as pd

from models.segmenter.data import TrainViews, crop_target, sample_view
from models.segmenter.losses import IGNORE
from models.segmenter.spec import InputPolicy


def two_part_operation() -> np.ndarray:
    op = np.zeros((1, 100, 200), np.uint8)
    op[0, 10:30, 10:30] = 1  # source
    op[0, 10:30, 150:170] = 1  # copy
    return op


def test_crop_with_both_parts_is_positive_with_one_part_ignored():
    op = two_part_operation()
    both = crop_target(op, 0, 0, 100, 200)
    assert both[10:30, 10:30].all() and both[10:30, 150:170].all() and both.max() == 1
    left = crop_target(op, 0, 0, 100, 100)
    assert (left[10:30, 10:30] == IGNORE).all() and set(np.unique(left)) == {0, IGNORE}
    nothing = crop_target(op, 50, 50, 40, 40)
    assert not nothing.any()


def test_touching_source_and_copy_count_when_mostly_visible():
    op = np.zeros((1, 60, 60), np.uint8)
    op[0, 10:20, 10:40] = 1  # one connected component (copy pasted right next to its source)
    assert crop_target(op, 0, 0, 60, 30)[10:20, 10:30].all()  # 20 of 30 columns visible
    assert (crop_target(op, 0, 0, 60, 20)[10:20, 10:20] == IGNORE).all()  # 10 of 30


def test_views_are_square_padded_white_and_cover_small_images_whole():
    policy = InputPolicy(size=64, max_pixels=128 * 128)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 200, (30, 50, 3), dtype=np.uint8)
    op = np.zeros((1, 30, 50), np.uint8)
    op[0, 2:8, 2:8] = op[0, 20:26, 40:46] = 1
    for global_p in (0.0, 1.0):
        view, target = sample_view(image, op, policy, rng, global_p, positive_crop_p=0.5)
        assert view.shape == (64, 64, 3) and target.shape == (64, 64)
        assert target.sum() == op.sum()  # the image fits: nothing cropped, both parts in view
        assert (view == 255).all(axis=2).sum() == 64 * 64 - 30 * 50  # white padding only


def test_large_image_crops_are_native_scale_and_values_valid():
    policy = InputPolicy(size=64, max_pixels=256 * 256)
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (200, 240, 3), dtype=np.uint8)
    op = np.zeros((1, 200, 240), np.uint8)
    op[0, 10:40, 10:40] = op[0, 150:180, 190:220] = 1
    for _ in range(20):
        view, target = sample_view(image, op, policy, rng, global_p=0.0, positive_crop_p=1.0)
        assert view.shape == (64, 64, 3)
        assert set(np.unique(target)) <= {0, 1, IGNORE}
        assert (target > 0).any()  # positive-biased crops contain forged pixels


def test_sampling_is_seeded_per_epoch_and_index(kaggle_root):
    from shared.dataset import labelled_rows, load_table

    rows: pd.DataFrame = labelled_rows(load_table(kaggle_root))
    views = TrainViews(rows, InputPolicy(size=64, max_pixels=64 * 64 * 4), 0.5, 0.5, None, seed=3)
    a = views[2]
    assert all(np.array_equal(x, y) for x, y in zip(a, views[2], strict=True))
    views.set_epoch(1)
    b = views[2]
    assert a[0].shape == (3, 64, 64) and a[1].shape == (1, 64, 64)
    assert not all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))

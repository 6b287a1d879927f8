"""The Kaggle-scale bench's figure sizes and projection arithmetic (the timing itself is `make bench`)."""

from __future__ import annotations

import numpy as np
import pytest

from bench import kaggle_scale


def test_sizes_follow_the_real_test_sets_spread():
    sizes = kaggle_scale.target_megapixels(16)
    assert min(sizes) == 0.1 and max(sizes) == 16.0
    assert np.median(sizes) == pytest.approx(1.5, rel=0.05)
    assert sizes == sorted(sizes)


def test_projection_uses_cpu_seconds_over_four_cores():
    figures = [{"megapixels": 1.0}, {"megapixels": 4.0}]
    cpu = {"000": 3.0, "001": 5.0}
    runs = {
        1: {"wall": 8.0, "seconds": {"000": 3.0, "001": 5.0}, "cpu": cpu, "failed": 0, "forged": 1},
        2: {"wall": 5.0, "seconds": {"000": 2.0, "001": 3.0}, "cpu": cpu, "failed": 0, "forged": 1},
    }
    rows = kaggle_scale._rows("full stack (x)", figures, runs)
    assert [r["jobs"] for r in rows] == [1, 2, "4 (projected)"]
    assert rows[0]["s_largest_figure"] == 5.0
    projected = rows[-1]
    assert projected["cpu_s_per_figure"] == pytest.approx(4.0)
    assert projected["hours"] == pytest.approx(3300 * 4.0 / 4 / 3600)
    assert projected["target"].endswith("NOT met") == (projected["hours"] > 2.0)


def test_views_per_figure_counts_the_global_view_and_the_tiles():
    from models.segmenter.spec import InputPolicy

    policy = InputPolicy(size=512, max_pixels=2048 * 2048, overlap=0.25)
    assert kaggle_scale.views_per_figure(300, 340, policy) == 1  # fits one input
    assert kaggle_scale.views_per_figure(4000, 4000, policy) == 1 + 5 * 5  # 2048 px work image, 384 px stride

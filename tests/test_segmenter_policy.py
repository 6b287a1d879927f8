"""Input policy: tiles cover every pixel, views stitch back exactly, no squashing, thin and tiny images."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.segmenter import policy
from models.segmenter.spec import InputPolicy


def red_forward(seen: list | None = None):
    """A 'network' whose probability is the red channel / 255: any stitching error shows up."""

    def forward(batch: np.ndarray) -> np.ndarray:
        assert batch.dtype == np.uint8 and batch.ndim == 4 and batch.shape[3] == 3
        assert batch.shape[1] % 32 == 0 and batch.shape[2] % 32 == 0, batch.shape
        if seen is not None:
            seen.append(batch.shape)
        return batch[..., 0].astype(np.float32) / 255.0

    return forward


def smooth_image(height: int, width: int) -> np.ndarray:
    ys, xs = np.mgrid[0:height, 0:width]
    red = (127 + 100 * np.sin(ys / 23.0) * np.cos(xs / 31.0)).astype(np.uint8)
    return np.stack([red, np.full_like(red, 50), np.full_like(red, 200)], axis=2)


@given(length=st.integers(1, 5000), tile=st.sampled_from([32, 64, 128, 256, 512]), overlap=st.floats(0, 0.9))
@settings(max_examples=300, deadline=None)
def test_tile_origins_cover_every_pixel_in_bounds(length, tile, overlap):
    origins = policy.tile_origins(length, tile, overlap)
    assert origins == sorted(set(origins)) and origins[0] == 0
    if length <= tile:
        assert origins == [0]
        return
    assert origins[-1] == length - tile
    gaps = np.diff(origins)
    assert (gaps <= max(1, int(tile * (1 - overlap)))).all()


@pytest.mark.parametrize("shape", [(20, 30), (64, 74), (64, 1400), (233, 1501), (700, 520), (1300, 1300)])
def test_views_stitch_back_to_native_size(shape):
    pol = InputPolicy(size=128, max_pixels=4 * 128 * 128, overlap=0.25, global_weight=0.5)
    image = smooth_image(*shape)
    seen: list = []
    prob = policy.predict_image(image, pol, red_forward(seen), batch_size=3)
    assert prob.shape == shape and prob.dtype == np.float32
    # a per-pixel network must give back its per-pixel answer; resampling of big images blurs a little
    error = np.abs(prob - image[..., 0] / 255.0)
    assert error.mean() < 0.01 and error.max() < 0.15
    # every input is at most one size x size view (plus padding to multiples of 32)
    assert all(h * w <= (pol.size + 32) ** 2 for _, h, w, _ in seen)


def test_small_images_are_seen_once_at_native_resolution():
    pol = InputPolicy(size=128, max_pixels=128 * 128 * 4)
    seen: list = []
    image = smooth_image(40, 100)
    prob = policy.predict_image(image, pol, red_forward(seen))
    assert seen == [(1, 64, 128, 3)]  # padded to multiples of 32, not enlarged
    assert np.abs(prob - image[..., 0] / 255.0).max() < 1e-6


def test_large_figure_is_tiled_not_squashed():
    pol = InputPolicy(size=256, max_pixels=1024 * 1024, overlap=0.25)
    seen: list = []
    policy.predict_image(smooth_image(3888, 3888), pol, red_forward(seen), batch_size=64)
    tiles = [s for s in seen if s[1:3] == (256, 256)]
    # work scale 1024/3888: 1024 px covered by 256 px tiles with overlap -> at least 5 x 5 tiles
    assert sum(s[0] for s in tiles) >= 25
    assert policy.work_scale(3888, 3888, pol) == pytest.approx(1024 / 3888)


def test_thin_strip_tiles_are_thin():
    pol = InputPolicy(size=256, max_pixels=512 * 512)
    assert policy.tile_shape(64, 1400, pol) == (64, 256)
    assert not policy.fits_one_input(64, 1400, pol)
    assert policy.fits_one_input(30, 2000, pol)  # 60k px < 256^2: one native input, however long


def test_policy_rejects_bad_values():
    with pytest.raises(ValueError, match="multiple of 32"):
        InputPolicy(size=100)
    with pytest.raises(ValueError, match="max_pixels"):
        InputPolicy(size=256, max_pixels=1000)
    with pytest.raises(ValueError, match="overlap"):
        InputPolicy(overlap=1.0)

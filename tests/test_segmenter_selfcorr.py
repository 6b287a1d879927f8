"""The self-correlation block finds duplicated regions at any offset, mirrored or not."""

import cv2
import numpy as np
import pytest
import torch

from models.segmenter.networks import build_network
from models.segmenter.selfcorr import SelfCorrelation, match_strength, patch_similarity
from models.segmenter.spec import CorrSpec, ModelSpec


def textured(size: int = 128, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.normal(0, 1, (size, size)).astype(np.float32), (0, 0), 1.5)


def as_batch(grey: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(grey)[None, None].repeat(1, 3, 1, 1)


def cells(box: tuple[int, int, int, int], stride: int = 8, grid: int = 16) -> np.ndarray:
    """Grid cells (stride x stride px, the patch size) lying inside the pixel box (y0, y1, x0, x1)."""
    y0, y1, x0, x1 = box
    rows = np.arange(grid) * stride
    inside_y = (rows >= y0) & (rows + stride <= y1)
    inside_x = (rows >= x0) & (rows + stride <= x1)
    return inside_y[:, None] & inside_x[None, :]


@pytest.mark.parametrize("mirror", [False, True])
def test_patch_branch_lights_up_copies_at_unaligned_offsets(mirror):
    image = textured()
    image[70:110, 75:115] = image[8:48, 13:53]  # offset (62, 62): not a multiple of the stride
    top1 = patch_similarity(as_batch(image), stride=8, topk=4, radius=1, mirror=mirror)[0, :, 0].reshape(16, 16)
    top1 = top1.numpy()
    dup = cells((70, 110, 75, 115)) | cells((8, 48, 13, 53))
    assert dup.sum() >= 8
    assert top1[dup].min() > 0.999  # a pure translation matches exactly, whatever the offset
    assert np.quantile(top1[~dup], 0.9) < 0.99  # smooth texture has near matches, but not exact ones


def test_mirror_variant_is_needed_for_flipped_copies():
    image = textured(seed=1)
    image[70:110, 75:115] = image[8:48, 13:53][:, ::-1]
    copy = cells((70, 110, 75, 115))
    plain = patch_similarity(as_batch(image), 8, 4, 1, mirror=False)[0, :, 0].reshape(16, 16).numpy()
    mirrored = patch_similarity(as_batch(image), 8, 4, 1, mirror=True)[0, :, 0].reshape(16, 16).numpy()
    assert mirrored[copy].min() > 0.999
    assert plain[copy].mean() < 0.95


def test_flat_background_matches_nothing():
    image = np.full((64, 64), 1.5, np.float32)
    image += np.random.default_rng(0).normal(0, 0.001, image.shape).astype(np.float32)
    top = patch_similarity(as_batch(image), 8, 4, 1, mirror=True)
    assert torch.all(top <= 0.0)


def test_block_shapes_and_tiny_grids():
    block = SelfCorrelation(16, CorrSpec(stride=8, dim=8, topk=8, radius=1))
    for side in (32, 64):
        feats = torch.randn(2, 16, side // 8, side // 8)
        out, sims = block(feats, torch.randn(2, 3, side, side))
        assert out.shape == feats.shape and torch.isfinite(out).all()
        assert sims.shape == (2, 16, side // 8, side // 8)
    sims = block.similarity_maps(torch.randn(1, 16, 4, 4), torch.randn(1, 3, 32, 32))
    assert sims.shape == (1, 16, 4, 4) and sims.min() >= match_strength(torch.tensor(-1.0)) - 1e-6
    assert sims.max() <= 1.0 + 1e-6


def test_match_strength_spreads_near_one():
    s = match_strength(torch.tensor([-1.0, 0.0, 0.9, 0.99, 1.0]))
    assert torch.all(s[1:] > s[:-1])
    assert s[4] == pytest.approx(1.0) and s[2] < 0.4 and s[3] - s[2] > s[2] - s[1] - 0.05


def test_network_with_corr_runs_and_learns_gradients():
    spec = ModelSpec("t", "Unet", "tu-convnext_atto", decoder={"decoder_channels": [32, 16, 16, 8, 8]}, corr=CorrSpec())
    net = build_network(spec)
    out = net(torch.randn(2, 3, 64, 96))
    assert out.shape == (2, 1, 64, 96)
    out.mean().backward()
    assert net.corr.embed[0].weight.grad is not None and net.corr.embed[0].weight.grad.abs().sum() > 0


def test_unavailable_stride_is_a_clear_error():
    with pytest.raises(ValueError, match="stride 2 not available"):
        build_network(ModelSpec("t", "FPN", "tu-convnext_atto", corr=CorrSpec(stride=2)))


def test_untrained_network_already_ranks_an_exact_copy_above_its_surroundings():
    torch.manual_seed(0)
    spec = ModelSpec("t", "Unet", "tu-convnext_atto", decoder={"decoder_channels": [32, 16, 16, 8, 8]}, corr=CorrSpec())
    net = build_network(spec).eval()
    image = textured()
    image[70:110, 75:115] = image[8:48, 13:53]
    with torch.no_grad():
        logits = net(as_batch(image * 40.0))[0, 0].numpy()  # contrast of a normalised photo
    copied = np.zeros_like(logits, bool)
    copied[72:108, 77:113] = copied[10:46, 15:51] = True
    assert np.median(logits[copied]) > np.quantile(logits[~copied], 0.9)
    spec_without = ModelSpec("t", "Unet", "tu-convnext_atto", corr=CorrSpec(patch=False))
    assert not build_network(spec_without).shortcut.weight.any()  # no patch evidence: no prior

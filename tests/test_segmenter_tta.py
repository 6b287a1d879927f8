"""TTA: every ttach view de-augments back to the input frame; merging is a mean of probabilities."""

import pytest
import torch
from torch import nn

from models.segmenter.tta import TTA_SETS, Probabilities, check_tta, tta_views, with_tta


@pytest.mark.parametrize("name", [n for n in TTA_SETS if n != "none"])
def test_augment_then_deaugment_is_identity(name):
    image = torch.randn(2, 3, 64, 96)  # non-square: rot90 swaps the sides and must swap them back
    for transformer in check_tta(name):
        augmented = transformer.augment_image(image)
        assert torch.equal(transformer.deaugment_mask(augmented), image)


@pytest.mark.parametrize("name", list(TTA_SETS))
def test_equivariant_network_is_unchanged_by_tta(name):
    net = nn.Conv2d(3, 1, 1)  # per-pixel: flips and rotations commute with it
    x = torch.randn(2, 3, 32, 64)
    with torch.no_grad():
        assert torch.allclose(with_tta(net, name)(x), torch.sigmoid(net(x)), atol=1e-6)


class RowRamp(nn.Module):
    """Logit grows down the rows, whatever the input: not flip-equivariant."""

    def forward(self, x):
        rows = torch.linspace(-4, 1, x.shape[2]).view(1, 1, -1, 1)
        return rows.expand(x.shape[0], 1, x.shape[2], x.shape[3])


def test_merge_is_mean_of_probabilities_not_logits():
    x = torch.zeros(1, 3, 8, 8)
    with torch.no_grad():
        merged = with_tta(RowRamp(), "flips")(x)
    prob = torch.sigmoid(RowRamp()(x))
    expected = (prob + prob.flip(2)) / 2  # 2 of the 4 views are vertically flipped, then flipped back
    assert torch.allclose(merged, expected, atol=1e-6)
    assert not torch.allclose(merged, torch.sigmoid((RowRamp()(x) + RowRamp()(x).flip(2)) / 2))


def test_views_and_errors():
    assert [tta_views(n) for n in ("none", "hflip", "flips", "d4")] == [1, 2, 4, 8]
    assert isinstance(with_tta(nn.Identity(), "none"), Probabilities)
    with pytest.raises(ValueError, match="unknown TTA set 'rot'"):
        with_tta(nn.Identity(), "rot")

"""Test-time augmentation through ttach, merged by the mean of *probabilities* (not logits).

Named sets (``segmenter.tta`` in params.yaml): ``none`` (1 view), ``hflip`` (2), ``flips``
(horizontal x vertical, 4), ``d4`` (flips x rot90, 8). Every view is de-augmented back to the
input's frame before averaging.
"""

from __future__ import annotations

import ttach
import ttach.aliases
from torch import Tensor, nn

TTA_SETS = {
    "none": None,
    "hflip": ttach.aliases.hflip_transform,
    "flips": ttach.aliases.flip_transform,
    "d4": ttach.aliases.d4_transform,
}


class Probabilities(nn.Module):
    """Wrap a logit network so it outputs sigmoid probabilities."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network

    def forward(self, x: Tensor) -> Tensor:
        return self.network(x).sigmoid()


def tta_views(name: str) -> int:
    """How many forward passes a TTA set costs."""
    return 1 if check_tta(name) is None else len(TTA_SETS[name]())


def check_tta(name: str) -> ttach.Compose | None:
    if name not in TTA_SETS:
        raise ValueError(f"unknown TTA set {name!r} (choose from {', '.join(TTA_SETS)})")
    factory = TTA_SETS[name]
    return factory() if factory else None


def with_tta(network: nn.Module, name: str) -> nn.Module:
    """A module mapping a normalised batch to probabilities, averaged over the TTA set's views."""
    model = Probabilities(network)
    transforms = check_tta(name)
    return model if transforms is None else ttach.SegmentationTTAWrapper(model, transforms, merge_mode="mean")

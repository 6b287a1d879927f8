"""Losses named in params.yaml (``loss: {bce: 1.0, dice: 1.0}``), built from smp's loss registry.

Targets hold 0, 1 or :data:`IGNORE` (forged pixels whose duplicate is outside the training crop:
nothing in view shows they are copies, so they are neither taught as forged nor as authentic).
"""

from __future__ import annotations

import torch
from segmentation_models_pytorch import losses as smp_losses
from torch import nn

IGNORE = 255

LOSSES = {
    "bce": lambda: smp_losses.SoftBCEWithLogitsLoss(ignore_index=IGNORE),
    "dice": lambda: smp_losses.DiceLoss("binary", from_logits=True, ignore_index=IGNORE),
    "focal": lambda: smp_losses.FocalLoss("binary", ignore_index=IGNORE),
    "lovasz": lambda: smp_losses.LovaszLoss("binary", ignore_index=IGNORE),
}


class WeightedLoss(nn.Module):
    """Weighted sum of named losses."""

    def __init__(self, weights: dict[str, float]):
        super().__init__()
        unknown = sorted(set(weights) - set(LOSSES))
        if unknown or not weights:
            raise ValueError(f"unknown or empty loss spec {weights} (choose from {', '.join(LOSSES)})")
        self.weights = dict(weights)
        self.parts = nn.ModuleDict({name: LOSSES[name]() for name in weights})

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = target.float()
        return sum(self.weights[name] * part(logits, target) for name, part in self.parts.items())

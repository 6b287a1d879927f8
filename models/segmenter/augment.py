"""Training augmentations (albumentations, ``strict=True``), applied identically to image and target.

Flips and rot90 (copy-move survives them), scale, brightness/contrast, JPEG and noise (figures are
re-compressed and scanned). Padding after scaling is white, like figure backgrounds; the target's
padding is authentic.
"""

from __future__ import annotations

import cv2
from albumentations import (
    Affine,
    Compose,
    GaussNoise,
    HorizontalFlip,
    ImageCompression,
    RandomBrightnessContrast,
    RandomRotate90,
    VerticalFlip,
)


def train_transform(pad_value: int = 255, seed: int | None = None, evidence: bool = False) -> Compose:
    """The training augmentation; with ``evidence``, an ``evidence`` target (H, W, C) follows the
    geometric transforms like a mask (nearest, padded with 0) and skips the photometric ones."""
    return Compose(
        [
            HorizontalFlip(p=0.5),
            VerticalFlip(p=0.5),
            RandomRotate90(p=0.5),
            Affine(
                scale=(0.8, 1.25),
                keep_ratio=True,
                border_mode=cv2.BORDER_CONSTANT,
                fill=pad_value,
                fill_mask=0,
                p=0.3,
            ),
            RandomBrightnessContrast(brightness_limit=0.15, contrast_limit=0.15, p=0.5),
            ImageCompression(quality_range=(60, 95), p=0.3),
            GaussNoise(std_range=(0.005, 0.03), p=0.2),
        ],
        strict=True,
        seed=seed,
        additional_targets={"evidence": "mask"} if evidence else None,
    )

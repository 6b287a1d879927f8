"""Training samples: ``size x size`` views of labelled images, drawn the way inference sees them.

Each sample is, with probability ``global_p``, the **global view** (whole image scaled to an area of
at most ``size``², see ``policy.py``), otherwise a **native-scale crop** of the work-scale image
(biased towards forged pixels with probability ``positive_crop_p``). The target is the union of the
operation masks, except where a crop cuts an operation so that fewer than two of its parts remain
in view: those pixels are :data:`~models.segmenter.losses.IGNORE` (a lone source or copy does not
show that it is duplicated). Sampling is seeded per (seed, epoch, index): reproducible and
independent of worker count.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import cv2
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from models.segmenter.losses import IGNORE
from models.segmenter.policy import fill_value, global_scale, pad_to, resize, scaled_shape, work_scale
from models.segmenter.spec import InputPolicy
from shared.dataset import true_masks
from shared.images import load_image

VISIBLE_FRACTION = 0.5  # a part of an operation counts as "in view" when half of it is

EvidenceLookup = Callable[[str], np.ndarray]
"""uid → uint8 ``(H, W, C)`` precomputed evidence (e.g. :class:`shared.evidence_maps.EvidenceStore`)."""


def with_evidence(image: np.ndarray, evidence: EvidenceLookup | None, uid: str) -> np.ndarray:
    """The RGB image with its evidence channels appended (unchanged when there is no lookup)."""
    if evidence is None:
        return image
    extra = evidence(uid)
    if extra.shape[:2] != image.shape[:2]:
        raise ValueError(f"{uid}: evidence {extra.shape[:2]} does not match the image {image.shape[:2]}")
    return np.concatenate([image, extra], axis=2)


def scale_channels(channels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize ``(N, H, W)`` 0/1 masks to ``shape`` (area-weighted, then >= 0.5)."""
    if channels.shape[1:] == tuple(shape):
        return channels
    out = [resize(c.astype(np.float32), shape) >= 0.5 for c in channels]
    return np.stack(out).astype(np.uint8) if out else np.zeros((0, *shape), np.uint8)


def crop_target(channels: np.ndarray, y: int, x: int, height: int, width: int) -> np.ndarray:
    """Target of a crop: 1 where an operation has at least two parts in view, IGNORE where it has one."""
    target = np.zeros((height, width), np.uint8)
    for channel in channels:
        window = channel[y : y + height, x : x + width]
        if not window.any():
            continue
        count, labels, stats, _ = cv2.connectedComponentsWithStats(channel, connectivity=8)
        inside = np.bincount(labels[y : y + height, x : x + width].ravel(), minlength=count)
        visible = [i for i in range(1, count) if inside[i] >= VISIBLE_FRACTION * stats[i, cv2.CC_STAT_AREA]]
        whole_single = count == 2 and visible  # source and copy touch: one component, mostly in view
        value = 1 if len(visible) >= 2 or whole_single else IGNORE
        target[(window > 0) & (target != 1)] = value
    return target


class ImageCache:
    """Decoded images (with their evidence channels appended, when an ``evidence`` lookup is given) and
    their operation masks, kept in memory up to ``max_items``."""

    def __init__(self, rows: pd.DataFrame, max_items: int = 4096, evidence: EvidenceLookup | None = None):
        self.rows = rows.reset_index(drop=True)
        self.max_items, self.evidence = max_items, evidence
        self._items: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if index in self._items:
            self._items.move_to_end(index)
            return self._items[index]
        row = self.rows.iloc[index]
        image = with_evidence(load_image(row["image_path"]), self.evidence, row["uid"])
        channels = true_masks(row)
        self._items[index] = (image, channels)
        if len(self._items) > self.max_items:
            self._items.popitem(last=False)
        return image, channels


def sample_view(
    image: np.ndarray,
    channels: np.ndarray,
    policy: InputPolicy,
    rng: np.random.Generator,
    global_p: float,
    positive_crop_p: float,
) -> tuple[np.ndarray, np.ndarray]:
    """One ``size x size`` training view (image uint8 RGB plus any evidence channels, target uint8 0/1/IGNORE)."""
    height, width = image.shape[:2]
    size = policy.size
    use_global = rng.random() < global_p
    scale = global_scale(height, width, policy) if use_global else work_scale(height, width, policy)
    shape = scaled_shape(height, width, scale)
    view, ops = resize(image, shape), scale_channels(channels, shape)
    vh, vw = shape
    ch, cw = min(size, vh), min(size, vw)
    y, x = _crop_origin(ops, vh, vw, ch, cw, rng, positive_crop_p)
    if (ch, cw) == (vh, vw):
        target = ops.max(axis=0) if len(ops) else np.zeros(shape, np.uint8)
    else:
        target = crop_target(ops, y, x, ch, cw)
    py, px = int(rng.integers(0, size - ch + 1)), int(rng.integers(0, size - cw + 1))
    view = pad_to(view[y : y + ch, x : x + cw], size, size, fill_value(view, policy.pad_value), py, px)
    target = pad_to(target, size, size, 0, py, px)
    return view, target


def _crop_origin(ops, vh, vw, ch, cw, rng, positive_crop_p) -> tuple[int, int]:
    if (ch, cw) == (vh, vw):
        return 0, 0
    if len(ops) and rng.random() < positive_crop_p:
        ys, xs = np.nonzero(ops.max(axis=0))
        if len(ys):
            i = int(rng.integers(len(ys)))
            y = int(np.clip(ys[i] - int(rng.integers(0, ch)), 0, vh - ch))
            x = int(np.clip(xs[i] - int(rng.integers(0, cw)), 0, vw - cw))
            return y, x
    return int(rng.integers(0, vh - ch + 1)), int(rng.integers(0, vw - cw + 1))


class TrainViews(Dataset):
    """Seeded random training views of labelled rows; call :meth:`set_epoch` before each epoch."""

    def __init__(
        self,
        rows: pd.DataFrame,
        policy: InputPolicy,
        global_p: float,
        positive_crop_p: float,
        transform=None,
        seed: int = 0,
        evidence: EvidenceLookup | None = None,
    ):
        self.cache = ImageCache(rows, evidence=evidence)
        self.policy, self.global_p, self.positive_crop_p = policy, global_p, positive_crop_p
        self.transform, self.seed, self.epoch = transform, seed, 0

    def __len__(self) -> int:
        return len(self.cache.rows)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        image, channels = self.cache[index]
        view, target = sample_view(image, channels, self.policy, rng, self.global_p, self.positive_crop_p)
        if self.transform is not None:
            self.transform.set_random_seed(int(rng.integers(2**31)))
            extra = {"evidence": view[:, :, 3:]} if view.shape[2] > 3 else {}
            out = self.transform(image=view[:, :, :3], mask=target, **extra)
            view, target = out["image"], out["mask"]
            if extra:  # evidence moves with the image, untouched by photometric changes
                view = np.concatenate([view, out["evidence"].reshape(*view.shape[:2], -1)], axis=2)
        return torch.from_numpy(np.ascontiguousarray(view)).permute(2, 0, 1), torch.from_numpy(target)[None]

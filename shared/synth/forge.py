"""Copy-move forging: 1–3 operations per figure, each a source region pasted 1–3 times.

Every operation records its source mask and each copy's mask (the pixels written); the ground-truth
channel is their union. Sources and copies of all operations are pairwise disjoint (with a small gap),
sources are textured, copies land on content inside forgeable panels and visibly change it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from shared.synth.config import SynthConfig, pick
from shared.synth.figure import Box, Figure, PlacedPanel
from shared.synth.textures import smooth_noise, to_uint8

EXACT = {"translate", "hflip", "vflip", "rot90", "rot180", "rot270"}
GAP = 2  # px kept free around every region so sources and copies never touch


class NoRoomError(RuntimeError):
    """The figure offers no textured source with a free, visible place for a copy."""


@dataclass
class Copy:
    """One pasted copy: ``patch`` (transformed source, its bbox ``dst_box``) written where ``mask``."""

    mask: np.ndarray
    dst_box: Box
    geometric: str
    photometric: list[str]
    dst_panel: int
    params: dict = field(default_factory=dict)  # angle/scale of a warp, or the size a whole panel was resized to

    @property
    def exact(self) -> bool:
        return self.geometric in EXACT and not self.photometric


@dataclass
class Operation:
    region: str
    source_mask: np.ndarray
    src_box: Box
    src_panel: int
    copies: list[Copy] = field(default_factory=list)

    @property
    def mask(self) -> np.ndarray:
        out = self.source_mask.copy()
        for c in self.copies:
            out |= c.mask
        return out

    @property
    def cross_panel(self) -> bool:
        return any(c.dst_panel != self.src_panel for c in self.copies)


def forge(rng: np.random.Generator, figure: Figure, config: SynthConfig) -> tuple[np.ndarray, list[Operation]]:
    """The forged image and its operations (at least one; raises if the figure offers no room at all)."""
    image = figure.image.copy()
    occupied = np.zeros(image.shape[:2], bool)
    n_ops = 1 + int(rng.choice(len(config.ops_weights), p=_norm(config.ops_weights)))
    ops: list[Operation] = []
    for attempt in range(n_ops * 6):
        if len(ops) == n_ops:
            break
        op = _operation(rng, figure, image, occupied, config, relaxed=attempt >= n_ops * 4)
        if op is not None:
            ops.append(op)
    if not ops:
        raise NoRoomError("no copy-move operation fits this figure")
    return image, ops


def _norm(weights) -> np.ndarray:
    w = np.asarray(weights, np.float64)
    return w / w.sum()


def _gray(patch: np.ndarray) -> np.ndarray:
    return patch.astype(np.float32).mean(axis=2) if patch.ndim == 3 else patch.astype(np.float32)


def _operation(rng, figure: Figure, image, occupied, config: SynthConfig, relaxed: bool) -> Operation | None:
    panels = [(i, p) for i, p in enumerate(figure.panels) if p.forgeable and min(p.height, p.width) >= 16]
    if not panels:
        return None
    kinds = dict(config.regions)
    if not any(p.objects for _, p in panels):
        kinds.pop("object", None)
    if len(panels) < 2:
        kinds.pop("panel", None)
    kind = "rect" if relaxed else pick(rng, kinds)
    h, w = image.shape[:2]
    areas = np.array([p.height * p.width for _, p in panels], np.float64)
    if kind == "object":
        candidates = [(i, p) for i, p in panels if p.objects]
        src_index, src_panel = candidates[int(rng.integers(0, len(candidates)))]
    else:
        k = int(rng.choice(len(panels), p=areas / areas.sum()))
        src_index, src_panel = panels[k]
    n_copies = 1 + int(rng.choice(len(config.copies_weights), p=_norm(config.copies_weights)))
    if kind == "panel":
        return _panel_operation(rng, figure, image, occupied, config, src_index, panels, n_copies)
    local = _source_shape(rng, kind, src_panel, h * w, config)
    if local is None:
        return None
    src_mask_local, (sh, sw) = local
    for _ in range(20):
        if kind == "object":
            y, x = src_mask_local[1]
            shape_mask = src_mask_local[0]
        else:
            y = int(rng.integers(src_panel.box[0], src_panel.box[2] - sh + 1))
            x = int(rng.integers(src_panel.box[1], src_panel.box[3] - sw + 1))
            shape_mask = src_mask_local
        src_box = (y, x, y + shape_mask.shape[0], x + shape_mask.shape[1])
        if _collides(shape_mask, src_box, occupied):
            if kind == "object":
                return None
            continue
        patch = image[src_box[0] : src_box[2], src_box[1] : src_box[3]]
        if _gray(patch)[shape_mask].std() < config.min_source_std and not relaxed:
            if kind == "object":
                return None
            continue
        region = f"object:{src_mask_local[2]}" if kind == "object" else kind
        full = _full(shape_mask, src_box, (h, w))
        op = Operation(region, full, src_box, src_index)
        blocked = occupied | _grow(full)
        for _ in range(n_copies):
            copy = _place_copy(
                rng, figure, image, blocked, config, patch, shape_mask, src_index, src_box, panels, relaxed, kind
            )
            if copy is not None:
                op.copies.append(copy)
                blocked |= _grow(copy.mask)
        if op.copies:
            occupied |= _grow(op.mask)
            return op
        return None
    return None


def _source_shape(rng, kind: str, panel: PlacedPanel, image_area: int, config: SynthConfig):
    """Local bool mask of the source region (for ``object``: the mask and its fixed top-left)."""
    min_area = 0.5 * config.area_frac[0] * image_area  # nothing smaller than half the smallest target
    if kind == "object":
        obj = panel.objects[int(rng.integers(0, len(panel.objects)))]
        if obj.mask.sum() < min_area:
            return None
        if rng.random() < 0.5:  # the forger's rectangle around the object, clipped to the panel
            pad = max(2, int(0.25 * min(obj.mask.shape)))
            y0, x0 = max(panel.box[0], obj.box[0] - pad), max(panel.box[1], obj.box[1] - pad)
            y1, x1 = min(panel.box[2], obj.box[2] + pad), min(panel.box[3], obj.box[3] + pad)
            mask = np.ones((y1 - y0, x1 - x0), bool)
            return (mask, (y0, x0), obj.kind), mask.shape
        return (obj.mask, obj.box[:2], obj.kind), obj.mask.shape
    lo, hi = config.area_frac
    area = float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) * image_area
    aspect = float(np.exp(rng.uniform(np.log(0.4), np.log(2.5))))
    if panel.family in ("blot", "gel"):
        aspect *= float(rng.uniform(0.3, 1.0))  # bands are wide
    bh, bw = np.sqrt(area * aspect), np.sqrt(area / aspect)
    limit = 0.48 if rng.random() < config.same_panel_prob else 0.9
    bh = int(np.clip(bh, 6, panel.height * limit))
    bw = int(np.clip(bw, 6, panel.width * limit))
    if bh < 6 or bw < 6:
        return None
    if kind == "rect":
        mask = np.ones((bh, bw), bool)
    elif kind == "polygon":
        mask = _polygon(rng, bh, bw)
    else:
        mask = _blob(rng, bh, bw)
    if mask.sum() < max(24, min_area):
        return None
    return mask, mask.shape


def _polygon(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    n = int(rng.integers(3, 9))
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radii = rng.uniform(0.55, 1.0, n)
    pts = np.stack([(w - 1) / 2 * (1 + radii * np.cos(angles)), (h - 1) / 2 * (1 + radii * np.sin(angles))], axis=1)
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
    return _tight(mask.astype(bool))


def _blob(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    yy = np.linspace(-1, 1, h, dtype=np.float32)[:, None]
    xx = np.linspace(-1, 1, w, dtype=np.float32)[None, :]
    field = 1.0 - np.sqrt(yy**2 + xx**2) + 0.6 * (smooth_noise(rng, h, w, cell=max(3.0, min(h, w) / 3)) - 0.5)
    mask = (field > 0.25).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return np.zeros((h, w), bool)
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return _tight(labels == biggest)


def _tight(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return mask
    return mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def _full(local: np.ndarray, box: Box, shape: tuple[int, int]) -> np.ndarray:
    full = np.zeros(shape, bool)
    full[box[0] : box[2], box[1] : box[3]] = local
    return full


def _collides(local: np.ndarray, box: Box, blocked: np.ndarray) -> bool:
    """Whether ``local`` placed at ``box`` hits ``blocked`` (already grown by ``GAP``)."""
    return bool(blocked[box[0] : box[2], box[1] : box[3]][local].any())


def _grow(mask: np.ndarray) -> np.ndarray:
    """``mask`` dilated by ``GAP`` px (on its bounding box only: fast on large images)."""
    ys, xs = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    if len(ys) == 0:
        return mask.copy()
    y0, y1 = max(0, ys[0] - GAP), min(mask.shape[0], ys[-1] + GAP + 1)
    x0, x1 = max(0, xs[0] - GAP), min(mask.shape[1], xs[-1] + GAP + 1)
    out = np.zeros_like(mask)
    kernel = np.ones((2 * GAP + 1, 2 * GAP + 1), np.uint8)
    out[y0:y1, x0:x1] = cv2.dilate(mask[y0:y1, x0:x1].astype(np.uint8), kernel).astype(bool)
    return out


def sample_warp(rng: np.random.Generator, name: str) -> dict[str, float]:
    """Parameters of a resampling transform: ``rotate`` 3–25° either way, ``scale`` 0.8–1.25 (log-uniform)."""
    if name == "rotate":
        return {"angle": float(rng.uniform(3, 25)) * (1 if rng.random() < 0.5 else -1), "scale": 1.0}
    if name == "scale":
        return {"angle": 0.0, "scale": float(np.exp(rng.uniform(np.log(0.8), np.log(1.25))))}
    return {}


def geometric_transform(
    patch: np.ndarray, mask: np.ndarray, name: str, angle: float = 0.0, scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Apply a named geometric transform to a patch and its mask (exact ones are pure index operations)."""
    if name == "translate":
        return patch, mask
    if name == "hflip":
        return patch[:, ::-1], mask[:, ::-1]
    if name == "vflip":
        return patch[::-1], mask[::-1]
    if name in ("rot90", "rot180", "rot270"):
        k = {"rot90": 1, "rot180": 2, "rot270": 3}[name]
        return np.rot90(patch, k), np.rot90(mask, k)
    if name in ("rotate", "scale"):
        return _warp(patch, mask, angle, scale)
    raise ValueError(f"unknown transform {name!r}")


def _warp(patch: np.ndarray, mask: np.ndarray, angle: float, scale: float) -> tuple[np.ndarray, np.ndarray]:
    h, w = mask.shape
    rot = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    cos, sin = abs(rot[0, 0]), abs(rot[0, 1])
    out_w, out_h = int(np.ceil(h * sin + w * cos)) + 2, int(np.ceil(h * cos + w * sin)) + 2
    rot[0, 2] += out_w / 2 - w / 2
    rot[1, 2] += out_h / 2 - h / 2
    warped = cv2.warpAffine(
        np.ascontiguousarray(patch), rot, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    wmask = cv2.warpAffine(mask.astype(np.float32), rot, (out_w, out_h), flags=cv2.INTER_LINEAR) > 0.5
    ys, xs = np.nonzero(wmask)
    if len(ys) == 0:
        return patch, mask
    sl = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
    return warped[sl], wmask[sl]


def photometric_transform(rng: np.random.Generator, patch: np.ndarray, gray: bool) -> tuple[np.ndarray, list[str]]:
    """Brightness/contrast, blur or noise (one or two of them); keeps gray patches gray."""
    names = list(rng.choice(["brightness", "blur", "noise"], size=int(rng.integers(1, 3)), replace=False))
    out = patch.astype(np.float32)
    for name in names:
        if name == "brightness":
            contrast, bias = float(rng.uniform(0.8, 1.25)), float(rng.uniform(-20, 20))
            mean = out.mean(axis=(0, 1), keepdims=True)
            out = (out - mean) * contrast + mean + bias
        elif name == "blur":
            out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.6, 1.5)))
        else:
            sigma = float(rng.uniform(2.0, 6.0))
            noise = rng.standard_normal(out.shape[:2], dtype=np.float32) * sigma
            out = out + (noise[:, :, None] if gray else rng.standard_normal(out.shape, dtype=np.float32) * sigma)
    return to_uint8(out), sorted(names)


def _place_copy(
    rng,
    figure: Figure,
    image,
    blocked,
    config: SynthConfig,
    patch,
    shape_mask,
    src_index,
    src_box,
    panels,
    relaxed: bool,
    kind: str,
) -> Copy | None:
    geometric = "translate" if relaxed else pick(rng, config.transforms)
    params = sample_warp(rng, geometric)
    t_patch, t_mask = geometric_transform(patch, shape_mask, geometric, **params)
    photometric: list[str] = []
    if not relaxed and rng.random() < config.photometric_prob:
        t_patch, photometric = photometric_transform(rng, t_patch, figure.gray)
    th, tw = t_mask.shape
    src_family = figure.panels[src_index].family
    same = [(i, p) for i, p in panels if i == src_index]
    others = [(i, p) for i, p in panels if i != src_index and p.family == src_family]  # never across families
    choices = same if (rng.random() < config.same_panel_prob or not others) else others
    h, w = image.shape[:2]
    for _ in range(25):
        dst_index, dst = choices[int(rng.integers(0, len(choices)))]
        if th > dst.height or tw > dst.width:
            continue
        y = int(rng.integers(dst.box[0], dst.box[2] - th + 1))
        x = int(rng.integers(dst.box[1], dst.box[3] - tw + 1))
        if kind == "object" and dst.family in ("blot", "gel") and rng.random() < 0.6:
            y = int(np.clip(src_box[0], dst.box[0], dst.box[2] - th))  # same band row, another lane
        box = (y, x, y + th, x + tw)
        if _collides(t_mask, box, blocked):
            continue
        current = image[box[0] : box[2], box[1] : box[3]]
        change = np.abs(_gray(current)[t_mask] - _gray(t_patch)[t_mask]).mean()
        if change < config.min_visible_change and not relaxed:
            continue
        current[t_mask] = t_patch[t_mask]
        return Copy(_full(t_mask, box, (h, w)), box, geometric, photometric, dst_index, params)
    return None


def _panel_operation(
    rng, figure: Figure, image, occupied, config: SynthConfig, src_index: int, panels, n_copies: int
) -> Operation | None:
    """A whole panel (or a large part of it) duplicated into other panels of the same family."""
    src = figure.panels[src_index]
    family_panels = [(i, p) for i, p in panels if i != src_index and p.family == src.family]
    if not family_panels:
        return None
    whole = rng.random() < 0.5
    if whole:
        sy0, sx0, sy1, sx1 = src.box
    else:
        fh, fw = rng.uniform(0.4, 0.9, 2)
        ph, pw = max(8, int(src.height * fh)), max(8, int(src.width * fw))
        sy0 = int(rng.integers(src.box[0], src.box[2] - ph + 1))
        sx0 = int(rng.integers(src.box[1], src.box[3] - pw + 1))
        sy1, sx1 = sy0 + ph, sx0 + pw
    src_box = (sy0, sx0, sy1, sx1)
    h, w = image.shape[:2]
    if occupied[sy0:sy1, sx0:sx1].any():
        return None
    source = _full(np.ones((sy1 - sy0, sx1 - sx0), bool), src_box, (h, w))
    patch = image[sy0:sy1, sx0:sx1]
    if _gray(patch).std() < config.min_source_std:
        return None
    op = Operation("panel" if whole else "partial_panel", source, src_box, src_index)
    blocked = occupied | _grow(source)
    order = rng.permutation(len(family_panels))
    for k in order[:n_copies]:
        dst_index, dst = family_panels[int(k)]
        geometric = pick(rng, {"translate": 0.75, "hflip": 0.1, "vflip": 0.05, "rot180": 0.1})
        t_patch, t_mask = geometric_transform(patch, np.ones(patch.shape[:2], bool), geometric)
        if whole and t_patch.shape[:2] != (dst.height, dst.width):
            ratio = dst.height / t_patch.shape[0], dst.width / t_patch.shape[1]
            if not all(0.8 <= r <= 1.25 for r in ratio):
                continue
            t_patch = cv2.resize(np.ascontiguousarray(t_patch), (dst.width, dst.height), interpolation=cv2.INTER_LINEAR)
            t_mask = np.ones((dst.height, dst.width), bool)
            params = {"resize": (dst.height, dst.width), "before": geometric}
            geometric = "scale"
        else:
            params = {}
        th, tw = t_mask.shape
        if th > dst.height or tw > dst.width:
            continue
        if whole:
            y, x = dst.box[0], dst.box[1]
        else:
            y = int(rng.integers(dst.box[0], dst.box[2] - th + 1))
            x = int(rng.integers(dst.box[1], dst.box[3] - tw + 1))
        box = (y, x, y + th, x + tw)
        if _collides(t_mask, box, blocked):
            continue
        full = _full(t_mask, box, (h, w))
        current = image[y : y + th, x : x + tw]
        if np.abs(_gray(current) - _gray(t_patch)).mean() < config.min_visible_change:
            continue
        image[y : y + th, x : x + tw] = t_patch
        op.copies.append(Copy(full, box, geometric, [], dst_index, params))
        blocked |= _grow(full)
    if not op.copies:
        return None
    occupied |= _grow(op.mask)
    return op

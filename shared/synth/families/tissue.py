"""Stained tissue sections (H&E, IHC) built from a Voronoi cell map.

Cells are Voronoi regions of jittered seeds (OpenCV distance transform with labels); each gets its own
cytoplasm density, a nucleus around its seed and a membrane where labels meet. Architectures mix by a
smooth mask: ``cellular`` (liver/kidney/adrenal-like sheets), ``alveolar`` (thin walls around empty
spaces: lung, adipose), ``lymphoid`` (packed small nuclei: thymus, spleen) and ``fibrous`` (streaky
stroma with elongated nuclei). Colour comes from Beer–Lambert mixing of stain optical densities.
"""

from __future__ import annotations

import cv2
import numpy as np

from shared.synth.figure import Obj, Panel
from shared.synth.textures import fibres, grain, smooth_noise, to_uint8

# Optical density per unit stain for R, G, B (Ruifrok & Johnston's H, E and DAB vectors, normalised).
HEMATOXYLIN = np.array([0.65, 0.70, 0.29], np.float32)
EOSIN = np.array([0.07, 0.99, 0.11], np.float32)
DAB = np.array([0.27, 0.57, 0.78], np.float32)
ARCHITECTURES = ("cellular", "alveolar", "lymphoid", "fibrous")


def voronoi(
    rng: np.random.Generator, h: int, w: int, cell: float, warp: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeds ``(n, 2)`` (y, x), the label map (0-based seed index) and the distance to the nearest seed.

    ``warp`` bends the cell walls by up to that fraction of the cell size.
    """
    gy, gx = max(1, int(h / cell)), max(1, int(w / cell))
    ys = (np.arange(gy)[:, None] + 0.5 + rng.uniform(-0.45, 0.45, (gy, gx))) * (h / gy)
    xs = (np.arange(gx)[None, :] + 0.5 + rng.uniform(-0.45, 0.45, (gy, gx))) * (w / gx)
    seeds = np.stack([ys.ravel(), xs.ravel()], axis=1).clip(0, [h - 1, w - 1]).astype(np.int64)
    seeds = np.unique(seeds, axis=0)
    field = np.ones((h, w), np.uint8)
    field[seeds[:, 0], seeds[:, 1]] = 0
    dist, labels = cv2.distanceTransformWithLabels(field, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    # DIST_LABEL_PIXEL numbers zero pixels in row-major scan order, which is the order np.unique gave the seeds
    if warp:  # bend straight Voronoi walls with a smooth displacement field
        amp = cell * warp
        dx = (smooth_noise(rng, h, w, cell=cell * 1.5) - 0.5) * 2 * amp
        dy = (smooth_noise(rng, h, w, cell=cell * 1.5) - 0.5) * 2 * amp
        map_x = (np.arange(w, dtype=np.float32)[None, :] + dx).astype(np.float32)
        map_y = (np.arange(h, dtype=np.float32)[:, None] + dy).astype(np.float32)
        labels = cv2.remap(labels.astype(np.float32), map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT)
        dist = cv2.remap(dist, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return seeds, labels.astype(np.int64) - 1, dist


def cell_walls(labels: np.ndarray) -> np.ndarray:
    """1 where neighbouring pixels belong to different cells (float32)."""
    edge = np.zeros(labels.shape, np.float32)
    edge[:, 1:] += labels[:, 1:] != labels[:, :-1]
    edge[1:, :] += labels[1:, :] != labels[:-1, :]
    return np.minimum(edge, 1.0)


def tissue_look(rng: np.random.Generator) -> dict:
    """What stays constant across panels of one tissue (a grid row): stain, architecture, magnification, colour."""
    first, second = (str(a) for a in rng.choice(ARCHITECTURES, 2, replace=True))
    return {
        "ihc": bool(rng.random() < 0.35),
        "architectures": (first, first if rng.random() < 0.5 else second),
        "zoom": float(rng.uniform(0.6, 1.8)),
        "hema": float(rng.uniform(0.8, 1.3)),
        "stain": float(rng.uniform(0.35, 0.8)),
        "dab": float(rng.uniform(1.0, 2.5)),
        "positive_share": float(rng.uniform(0.1, 0.8)),
        "light": float(rng.uniform(0.92, 1.0)),
        "tint": (1.0, float(rng.uniform(0.95, 1.0)), float(rng.uniform(0.92, 1.0))),
        "blur": float(rng.uniform(0.5, 1.1)),
    }


def render_tissue(rng: np.random.Generator, h: int, w: int, look: dict | None = None) -> Panel:
    """An H&E (65 %) or IHC (35 %) section panel; ``look`` (see :func:`tissue_look`) makes panels match."""
    look = look or tissue_look(rng)
    scale = min(h, w)
    mix = np.clip((smooth_noise(rng, h, w, cell=max(16.0, scale * rng.uniform(0.3, 0.8))) - 0.5) * 4 + 0.5, 0, 1)
    layers = [_architecture(rng, a, h, w, look) for a in look["architectures"]]
    eosin = layers[0][0] * (1 - mix) + layers[1][0] * mix
    hema = layers[0][1] * (1 - mix) + layers[1][1] * mix
    positive_cells = np.where(mix < 0.5, layers[0][3], layers[1][3])  # per-cell DAB positivity for IHC
    objects = layers[0][2] if rng.random() < 0.5 else layers[1][2]
    holes = _holes(rng, h, w)
    eosin, hema = eosin * (1 - holes), hema * (1 - holes)
    od = hema[:, :, None] * HEMATOXYLIN * look["hema"]
    if look["ihc"]:
        dab = positive_cells * (0.6 * eosin + 0.4 * hema) * look["dab"] * (1 - holes)
        od = od * 0.8 + dab[:, :, None] * DAB + 0.12 * eosin[:, :, None] * EOSIN
    else:
        od = od + eosin[:, :, None] * EOSIN * look["stain"]
    rgb = look["light"] * np.asarray(look["tint"], np.float32) * np.exp(-od)
    rgb = cv2.GaussianBlur(rgb, (0, 0), look["blur"])
    rgb = rgb + grain(rng, h, w, float(rng.uniform(0.004, 0.012)), channels=3)
    return Panel(to_uint8(rgb * 255), "histology", objects)


def _holes(rng: np.random.Generator, h: int, w: int) -> np.ndarray | float:
    """Empty space: vessel/lumen blobs or thin tears (0 = tissue, 1 = glass)."""
    style = rng.random()
    if style < 0.35:
        return 0.0
    noise = smooth_noise(rng, h, w, cell=max(10.0, min(h, w) * rng.uniform(0.08, 0.3)), octaves=3)
    if style < 0.75:
        return np.clip((noise - rng.uniform(0.68, 0.85)) * 25, 0, 1)
    return np.clip((rng.uniform(0.01, 0.03) - np.abs(noise - 0.5)) * 60, 0, 1)


def _architecture(rng: np.random.Generator, kind: str, h: int, w: int, look: dict):
    """Eosin and hematoxylin maps, a few whole cells (objects) and a per-pixel IHC positivity for one tissue type."""
    scale = min(h, w)
    zoom = look["zoom"] * float(rng.uniform(0.9, 1.1)) * max(0.6, scale / 500)
    cell = max(4.0, {"cellular": 16.0, "alveolar": 45.0, "lymphoid": 7.0, "fibrous": 14.0}[kind] * zoom)
    positive_share = look["positive_share"]
    if kind == "fibrous":
        angle = float(rng.uniform(0, 180))
        eosin = 0.45 + 0.5 * fibres(rng, h, w, scale=max(2.0, cell / 3), angle=angle)
        seeds, labels, dist = voronoi(rng, h, w, cell * 1.6)
        irregular = 1.5 * (smooth_noise(rng, h, w, cell=max(1.5, cell * 0.15)) - 0.5)
        nucleus = np.clip((cell * 0.22 - dist + irregular) / 1.2, 0, 1) * (rng.random(len(seeds)) < 0.85)[labels]
        positive = (rng.random(len(seeds)) < positive_share)[labels].astype(np.float32)
        return eosin.astype(np.float32), (nucleus * 1.6).astype(np.float32), _objects(seeds, cell * 0.3, h, w), positive
    seeds, labels, dist = voronoi(rng, h, w, cell, warp=float(rng.uniform(0.15, 0.45)))
    per_cell = rng.uniform(0.6, 1.0, len(seeds)).astype(np.float32)
    membrane = cv2.GaussianBlur(cell_walls(labels), (0, 0), max(0.5, cell * 0.04))
    nuclear_r = cell * {"cellular": 0.26, "alveolar": 0.12, "lymphoid": 0.42}[kind] * rng.uniform(0.75, 1.2, len(seeds))
    has_nucleus = rng.random(len(seeds)) < {"cellular": 0.85, "alveolar": 0.35, "lymphoid": 0.97}[kind]
    irregular = 0.35 * nuclear_r[labels] * (smooth_noise(rng, h, w, cell=max(1.5, cell * 0.2)) - 0.5)
    edge = np.clip((nuclear_r[labels] - dist + irregular) / 1.2, 0, 1) * has_nucleus[labels]
    chromatin = 0.65 + 0.35 * smooth_noise(rng, h, w, cell=max(1.5, cell * 0.08))
    nucleus = (edge * chromatin).astype(np.float32)
    if kind == "alveolar":
        wall = np.clip(membrane * rng.uniform(3.0, 6.0) * (0.6 + 0.8 * smooth_noise(rng, h, w, cell=cell)), 0, 1)
        eosin = wall * 0.9 + 0.03
        nucleus = nucleus * np.clip(wall * 3, 0, 1)
    elif kind == "lymphoid":
        eosin = 0.25 + 0.2 * per_cell[labels]
    else:
        eosin = 0.45 * per_cell[labels] + 0.35 * membrane + 0.15 * smooth_noise(rng, h, w, cell=max(2.0, cell / 5))
    hema = nucleus * float(rng.uniform(1.2, 2.0)) + float(rng.uniform(0.03, 0.1))
    clustered = smooth_noise(rng, h, w, cell=cell * 4)[seeds[:, 0], seeds[:, 1]]
    positive = (clustered < positive_share)[labels].astype(np.float32)
    objects = _objects(seeds[has_nucleus], float(np.median(nuclear_r)) * 1.6, h, w)
    return eosin.astype(np.float32), hema.astype(np.float32), objects, positive


def _objects(seeds: np.ndarray, radius: float, h: int, w: int, limit: int = 40) -> list[Obj]:
    """Whole cells (a disc around the nucleus plus some cytoplasm) a forger may duplicate."""
    r = int(np.ceil(radius * 2.0)) + 2
    if r < 4:
        return []
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    disc = yy**2 + xx**2 <= r * r
    out = []
    for y, x in seeds[: limit * 3]:
        if r <= y < h - r - 1 and r <= x < w - r - 1:
            out.append(Obj("cell", (int(y) - r, int(x) - r, int(y) + r + 1, int(x) + r + 1), disc))
        if len(out) == limit:
            break
    return out

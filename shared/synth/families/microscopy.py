"""Fluorescence and electron-microscopy panels, and the cell helpers other families share.

Cells are ellipses (position, radii, angle); a few dozen per panel are returned as objects a forger
can duplicate. Fluorescence mixes 1–3 channel maps additively in their display colours.
"""

from __future__ import annotations

import cv2
import numpy as np

from shared.synth.families.tissue import cell_walls, voronoi
from shared.synth.figure import Negative, Obj, Panel
from shared.synth.textures import fibres, grain, smooth_noise, to_uint8

FLUO_COLOURS = {
    "blue": (0.25, 0.45, 1.0),
    "green": (0.1, 1.0, 0.15),
    "red": (1.0, 0.12, 0.1),
    "magenta": (1.0, 0.1, 0.9),
    "cyan": (0.1, 0.9, 1.0),
    "yellow": (1.0, 0.9, 0.1),
    "white": (1.0, 1.0, 1.0),
}


def random_cells(rng: np.random.Generator, h: int, w: int, radius: float, count: int, clustered: bool) -> np.ndarray:
    """``(count, 5)`` rows of ``cy, cx, ry, rx, angle``."""
    if clustered and count > 6:
        n_clusters = max(1, count // int(rng.integers(5, 20)))
        centres = rng.uniform((0, 0), (h, w), (n_clusters, 2))
        spread = radius * float(rng.uniform(2.0, 6.0))
        pos = centres[rng.integers(0, n_clusters, count)] + rng.normal(0, spread, (count, 2))
    else:
        pos = rng.uniform((0, 0), (h, w), (count, 2))
    radii = radius * rng.uniform(0.7, 1.3, (count, 1)) * rng.uniform(0.75, 1.0, (count, 2))
    angles = rng.uniform(0, 180, (count, 1))
    return np.hstack([pos, radii, angles]).astype(np.float32)


def _draw_ellipses(canvas: np.ndarray, cells: np.ndarray, values: np.ndarray, scale: float = 1.0) -> None:
    for (cy, cx, ry, rx, angle), value in zip(cells, values, strict=True):
        axes = (max(1, int(rx * scale)), max(1, int(ry * scale)))
        cv2.ellipse(canvas, (int(cx), int(cy)), axes, float(angle), 0, 360, float(value), -1, cv2.LINE_AA)


def cell_objects(cells: np.ndarray, h: int, w: int, kind: str, limit: int, scale: float = 1.0) -> list[Obj]:
    """Whole cells (ellipse masks) inside the panel, for copy-move of objects."""
    objects = []
    for cy, cx, ry, rx, angle in cells[:limit]:
        r = int(np.ceil(max(ry, rx) * scale)) + 2
        y0, x0, y1, x1 = int(cy) - r, int(cx) - r, int(cy) + r + 1, int(cx) + r + 1
        if y0 < 0 or x0 < 0 or y1 > h or x1 > w or r < 3:
            continue
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        axes = (max(1, int(rx * scale)) + 1, max(1, int(ry * scale)) + 1)
        cv2.ellipse(mask, (int(cx) - x0, int(cy) - y0), axes, float(angle), 0, 360, 1, -1)
        objects.append(Obj(kind, (y0, x0, y1, x1), mask.astype(bool)))
    return objects


def fluorescence_channels(
    rng: np.random.Generator, h: int, w: int, n_channels: int, look: dict | None = None
) -> tuple[list[np.ndarray], list]:
    """Channel intensity maps in [0, 1] (nuclei first) and the explicit cells (for objects)."""
    look = look or {}
    radius = max(2.5, min(h, w) * look.get("radius", float(rng.uniform(0.012, 0.05))))
    density = look.get("density", float(rng.uniform(0.04, 0.35))) * float(rng.uniform(0.7, 1.3))
    count = int(np.clip(density * h * w / (np.pi * radius**2), 3, 1500))
    cells = random_cells(rng, h, w, radius, count, clustered=rng.random() < 0.5)
    nuclei = np.zeros((h, w), np.float32)
    _draw_ellipses(nuclei, cells, rng.uniform(0.35, 1.0, count))
    chromatin = 0.6 + 0.4 * smooth_noise(rng, h, w, cell=max(1.5, radius / 2.5))
    nuclei = cv2.GaussianBlur(nuclei * chromatin, (0, 0), max(0.6, radius * 0.12))
    channels = [nuclei]
    kinds = look.get("kinds") or fluorescence_kinds(rng, n_channels)
    for c in range(1, n_channels):
        kind = kinds[c - 1]
        chan = np.zeros((h, w), np.float32)
        positive = rng.random(count) < float(rng.uniform(0.1, 1.0))
        if kind == "cytoplasm":
            _draw_ellipses(chan, cells[positive], rng.uniform(0.2, 0.9, int(positive.sum())), scale=2.2)
            chan *= 0.5 + 0.5 * smooth_noise(rng, h, w, cell=max(2.0, radius / 1.5), octaves=2)
            chan = cv2.GaussianBlur(chan, (0, 0), max(0.8, radius * 0.3))
        elif kind == "filaments":
            # stress fibres: two crossing streak fields, each confined to the spread cell bodies
            angle = float(rng.uniform(0, 180))
            tex = np.maximum(
                fibres(rng, h, w, scale=max(2.0, radius / 3), angle=angle),
                fibres(rng, h, w, scale=max(2.0, radius / 3), angle=angle + float(rng.uniform(40, 90))),
            )
            cover = np.zeros((h, w), np.float32)
            _draw_ellipses(cover, cells[positive], np.ones(int(positive.sum())), scale=2.4)
            cover = cv2.GaussianBlur(cover, (0, 0), max(1.0, radius * 0.3))
            chan = np.clip((tex - 0.55) * 3.0, 0, 1) * cover + 0.15 * cover
        else:
            n_dots = int(np.clip(count * rng.uniform(1, 8), 5, 4000))
            pos = cells[rng.integers(0, count, n_dots), :2] + rng.normal(0, radius * 1.5, (n_dots, 2))
            ok = (pos[:, 0] >= 0) & (pos[:, 0] < h) & (pos[:, 1] >= 0) & (pos[:, 1] < w)
            pos = pos[ok].astype(np.int64)
            chan[pos[:, 0], pos[:, 1]] = rng.uniform(0.5, 1.0, len(pos))
            chan = cv2.GaussianBlur(chan, (0, 0), max(0.7, radius * 0.12)) * 6.0
        channels.append(np.clip(chan, 0, 1))
    return channels, cells


def colourise(channels: list[np.ndarray], colours: list[str], background: float, gain: float) -> np.ndarray:
    """Additive colour mix of channel maps → float RGB in [0, 1]."""
    h, w = channels[0].shape
    rgb = np.full((h, w, 3), background, np.float32)
    for chan, name in zip(channels, colours, strict=True):
        rgb += chan[:, :, None] * np.asarray(FLUO_COLOURS[name], np.float32) * gain
    return np.clip(rgb, 0, 1)


def fluorescence_kinds(rng: np.random.Generator, n_channels: int) -> list[str]:
    """What each non-nuclear channel stains."""
    options = [["cytoplasm", "filaments", "puncta"], ["cytoplasm", "puncta"]]
    return [str(rng.choice(options[min(c, 1)])) for c in range(n_channels - 1)]


def fluorescence_look(rng: np.random.Generator, n_channels: int | None = None) -> dict:
    """Stain, colours, magnification and density shared by the panels of one experiment."""
    n = n_channels or int(rng.choice([1, 2, 3], p=[0.35, 0.4, 0.25]))
    return {
        "n_channels": n,
        "radius": float(rng.uniform(0.012, 0.05)),
        "density": float(rng.uniform(0.04, 0.35)),
        "kinds": fluorescence_kinds(rng, n),
        **fluorescence_style(rng, n),
    }


def fluorescence_style(rng: np.random.Generator, n_channels: int) -> dict:
    palette = [["blue"], ["blue", "green"], ["blue", "red"], ["blue", "green", "red"], ["blue", "magenta", "green"]]
    options = [p for p in palette if len(p) == n_channels] or [["blue", "green", "red"][:n_channels]]
    colours = options[int(rng.integers(0, len(options)))]
    if n_channels == 1 and rng.random() < 0.4:
        colours = [str(rng.choice(["green", "red", "white"]))]
    return {"colours": colours, "background": float(rng.uniform(0.0, 0.06)), "gain": float(rng.uniform(0.7, 1.2))}


def render_fluorescence(rng: np.random.Generator, h: int, w: int, look: dict | None = None) -> Panel:
    look = look or fluorescence_look(rng)
    channels, cells = fluorescence_channels(rng, h, w, look["n_channels"], look)
    rgb = colourise(channels, look["colours"], look["background"], look["gain"])
    rgb = rgb + grain(rng, h, w, float(rng.uniform(0.005, 0.03)), channels=3)
    return Panel(to_uint8(rgb * 255), "fluorescence", cell_objects(cells, h, w, "cell", 40))


def em_look(rng: np.random.Generator) -> dict:
    return {"base": float(rng.uniform(0.5, 0.78)), "grain": float(rng.uniform(0.02, 0.05))}


def render_em(rng: np.random.Generator, h: int, w: int, look: dict | None = None) -> Panel:
    """Transmission-EM-like gray section: cell membranes, a nucleus, mitochondria with cristae, vesicles, grain."""
    look = look or em_look(rng)
    scale = min(h, w)
    base = look["base"] + 0.12 * (smooth_noise(rng, h, w, cell=max(8.0, scale / 6), octaves=3) - 0.5)
    cytoplasm = 0.06 * (smooth_noise(rng, h, w, cell=max(1.5, scale / 150)) - 0.5)
    cell = scale * float(rng.uniform(0.15, 0.5))
    seeds, labels, _ = voronoi(rng, h, w, cell, warp=0.3)
    membranes = cv2.GaussianBlur(cv2.dilate(cell_walls(labels), np.ones((2, 2), np.uint8)), (0, 0), 0.8)
    field = smooth_noise(rng, h, w, cell=max(6.0, scale * float(rng.uniform(0.05, 0.15))), octaves=2)
    reticulum = np.zeros((h, w), np.float32)  # ER-like meandering membranes inside the cells
    for level in rng.uniform(0.3, 0.7, int(rng.integers(0, 4))):
        reticulum += np.exp(-(((field - level) / 0.01) ** 2))
    darker = np.zeros((h, w), np.float32)
    if rng.random() < 0.6:  # a nucleus: paler round region with heterochromatin along its envelope
        k = int(rng.integers(0, len(seeds)))
        r = float(cell * rng.uniform(0.2, 0.35))
        yy, xx = np.ogrid[:h, :w]
        centre_dist = np.sqrt((yy - seeds[k, 0]) ** 2 + (xx - seeds[k, 1]) ** 2).astype(np.float32)
        nucleus = np.clip((r - centre_dist) / 2.0, 0, 1)
        rim = np.clip(1 - np.abs(centre_dist - r * 0.9) / (r * 0.12), 0, 1)
        darker += 0.12 * nucleus + 0.25 * rim * smooth_noise(rng, h, w, cell=max(2.0, r / 4))
    radius = max(3.0, scale * float(rng.uniform(0.02, 0.05)))
    count = int(np.clip(h * w / (radius**2 * float(rng.uniform(12, 60))), 3, 300))
    organelles = random_cells(rng, h, w, radius, count, clustered=False)
    organelles[:, 2] *= rng.uniform(1.0, 2.5, count)
    mito = np.zeros((h, w), np.float32)
    rims = np.zeros((h, w), np.float32)
    for cy, cx, ry, rx, angle in organelles:
        centre, axes = (int(cx), int(cy)), (max(1, int(rx)), max(1, int(ry)))
        cv2.ellipse(mito, centre, axes, float(angle), 0, 360, 1.0, -1, cv2.LINE_AA)
        cv2.ellipse(rims, centre, axes, float(angle), 0, 360, 1.0, max(1, int(radius * 0.12)), cv2.LINE_AA)
        if rx > ry * 1.3:  # cristae across the long axis
            step = max(3, int(ry * 0.6))
            theta = np.deg2rad(angle)
            along, across = np.array([np.cos(theta), np.sin(theta)]), np.array([-np.sin(theta), np.cos(theta)])
            for t in range(-int(rx) + step, int(rx) - step + 1, step):
                a = np.array([cx, cy]) + along * t - across * ry * 0.8
                b = np.array([cx, cy]) + along * t + across * ry * 0.8
                cv2.line(rims, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), 0.8, max(1, int(ry * 0.15)), cv2.LINE_AA)
    vesicles = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(0, 60))):
        y, x, r = int(rng.integers(0, h)), int(rng.integers(0, w)), int(max(2, radius * rng.uniform(0.2, 0.5)))
        cv2.circle(vesicles, (x, y), r, 1.0, 1, cv2.LINE_AA)
    level = base + cytoplasm - 0.45 * membranes - 0.2 * reticulum - darker - 0.2 * mito - 0.3 * rims - 0.25 * vesicles
    negatives = []
    if rng.random() < 0.15:
        level, negative = _periodic_patch(rng, level)
        if negative is not None:
            negatives.append(negative)
    level = cv2.GaussianBlur(level, (0, 0), float(rng.uniform(0.5, 1.1)))
    level += grain(rng, h, w, look["grain"])
    gray = to_uint8(np.clip(level, 0, 1) * 255)
    objects = cell_objects(organelles, h, w, "organelle", 30)
    return Panel(np.repeat(gray[:, :, None], 3, axis=2), "em", objects, negatives)


def _periodic_patch(rng: np.random.Generator, level: np.ndarray) -> tuple[np.ndarray, Negative | None]:
    """A striated region (sarcomere-like bands) with an integer period: genuinely repeated, not forged."""
    h, w = level.shape
    period = int(rng.integers(8, max(9, min(h, w) // 6)))
    ph, pw = int(h * rng.uniform(0.3, 0.6)), int(w * rng.uniform(0.3, 0.6))
    if pw < 3 * period or ph < 8:
        return level, None
    y0, x0 = int(rng.integers(0, h - ph)), int(rng.integers(0, w - pw))
    phase = (np.arange(pw) % period) / period
    stripes = 0.5 + 0.5 * np.cos(2 * np.pi * phase) ** 3
    level = level.copy()
    soft = np.ones((ph, pw), np.float32)  # fade the striated region into its surroundings
    ramp = max(2, min(ph, pw) // 8)
    edge = np.minimum(np.arange(ph)[:, None], np.arange(ph)[::-1, None]).clip(max=ramp) / ramp
    soft *= edge * (np.minimum(np.arange(pw), np.arange(pw)[::-1]).clip(max=ramp) / ramp)[None, :]
    region = level[y0 : y0 + ph, x0 : x0 + pw]
    level[y0 : y0 + ph, x0 : x0 + pw] = region * (1 - soft) + (0.35 + 0.35 * stripes[None, :]) * soft
    if pw - 2 * ramp < 2 * period or ph - 2 * ramp < 4:
        return level, None
    box_a = (y0 + ramp, x0 + ramp, y0 + ph - ramp, x0 + ramp + period)
    box_b = (y0 + ramp, x0 + ramp + period, y0 + ph - ramp, x0 + ramp + 2 * period)
    return level, Negative("regular_pattern", (box_a, box_b))

"""Bright-field panels: phase-contrast cultures, crystal-violet transwell membranes, scikit-image photographs.

Cell bodies are ellipses bent by a smooth displacement field (irregular outlines); phase contrast adds
the bright halo around each body. Transwell membranes carry a hexagonal pore lattice: a genuinely
periodic pattern (hard negative). The scikit-image samples (cells, IHC, retina) are used at most once
per figure (the caller passes the still unused names).
"""

from __future__ import annotations

import cv2
import numpy as np

from shared.synth.families.microscopy import cell_objects, random_cells
from shared.synth.figure import Negative, Panel
from shared.synth.textures import grain, smooth_noise, source_crop, to_uint8


def _bodies(rng: np.random.Generator, h: int, w: int, radius: float, confluence: float, elongation: float):
    count = int(np.clip(confluence * h * w / (np.pi * radius**2 * (1 + elongation) / 2), 3, 800))
    cells = random_cells(rng, h, w, radius, count, clustered=rng.random() < 0.5)
    cells[:, 2] *= rng.uniform(1.0, elongation, count)
    body = np.zeros((h, w), np.float32)
    for cy, cx, ry, rx, angle in cells:
        cv2.ellipse(body, (int(cx), int(cy)), (max(1, int(rx)), max(1, int(ry))), float(angle), 0, 360, 1.0, -1)
    amp = radius * 0.5
    dx = ((smooth_noise(rng, h, w, cell=max(2.0, radius)) - 0.5) * 2 * amp).astype(np.float32)
    dy = ((smooth_noise(rng, h, w, cell=max(2.0, radius)) - 0.5) * 2 * amp).astype(np.float32)
    map_x = np.arange(w, dtype=np.float32)[None, :] + dx
    map_y = np.arange(h, dtype=np.float32)[:, None] + dy
    body = cv2.remap(body, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return cells, body


def brightfield_look(rng: np.random.Generator) -> dict:
    """Preparation, magnification, density and camera shared by the panels of one experiment."""
    return {
        "kind": "transwell" if rng.random() < 0.35 else "phase",
        "radius": float(rng.uniform(0.012, 0.04)),
        "confluence": float(rng.uniform(0.1, 0.55)),
        "elongation": float(rng.uniform(1.0, 4.0)),
        "base": float(rng.uniform(0.5, 0.75)),
        "tint": (1.0, float(rng.uniform(0.96, 1.02)), float(rng.uniform(0.82, 0.95))) if rng.random() < 0.35 else None,
    }


def render_phase_contrast(rng: np.random.Generator, h: int, w: int, look: dict | None = None) -> Panel:
    """Cultured cells in phase contrast: dark granular bodies, a bright halo, a paler nucleus."""
    look = look or brightfield_look(rng)
    radius = max(3.0, min(h, w) * look["radius"])
    confluence = look["confluence"] * float(rng.uniform(0.7, 1.3))
    cells, body = _bodies(rng, h, w, radius, confluence, max(1.2, look["elongation"]))
    ring = max(3, int(radius * 0.5)) | 1
    halo = np.clip(cv2.dilate(body, np.ones((ring, ring), np.uint8)) - body, 0, 1)
    halo = cv2.GaussianBlur(halo, (0, 0), max(0.8, radius * 0.12))
    nucleus = np.zeros((h, w), np.float32)
    for cy, cx, ry, rx, angle in cells:
        axes = (max(1, int(min(rx, ry) * 0.45)), max(1, int(min(rx, ry) * 0.4)))
        cv2.ellipse(nucleus, (int(cx), int(cy)), axes, float(angle), 0, 360, 1.0, -1, cv2.LINE_AA)
    granules = smooth_noise(rng, h, w, cell=max(1.5, radius / 4))
    level = look["base"] + 0.05 * (smooth_noise(rng, h, w, cell=max(12.0, min(h, w) / 2)) - 0.5)
    darkness = float(rng.uniform(0.12, 0.3)) * body * (0.5 + 0.8 * granules) - 0.08 * nucleus * body
    level = level - cv2.GaussianBlur(darkness, (0, 0), 0.7) + float(rng.uniform(0.25, 0.5)) * halo
    level = level + grain(rng, h, w, float(rng.uniform(0.006, 0.02)))
    rgb = np.repeat(level[:, :, None], 3, axis=2)
    if look["tint"] is not None:  # warm or green-tinted microscope camera
        rgb = rgb * np.asarray(look["tint"], np.float32)
    return Panel(to_uint8(rgb * 255), "brightfield", cell_objects(cells, h, w, "cell", 40))


def render_transwell(rng: np.random.Generator, h: int, w: int, look: dict | None = None) -> Panel:
    """Crystal-violet stained cells on a porous membrane (pores: an exactly periodic lattice)."""
    look = look or brightfield_look(rng)
    period = int(9 + 12 * (look["radius"] - 0.012) / 0.028)
    pore = max(1, int(period * rng.uniform(0.1, 0.22)))
    lattice = np.zeros((h, w), np.float32)
    for row, y in enumerate(range(period // 2, h, period)):
        offset = (period // 2) * (row % 2)
        for x in range(offset + period // 4, w, period):
            cv2.circle(lattice, (x, y), pore, 1.0, -1, cv2.LINE_AA)
    radius = max(3.0, min(h, w) * look["radius"])
    confluence = look["confluence"] * float(rng.uniform(0.5, 1.0))
    cells, body = _bodies(rng, h, w, radius, confluence, 1.0 + 0.4 * look["elongation"])
    nucleus = np.zeros((h, w), np.float32)
    for cy, cx, ry, rx, angle in cells:
        axes = (max(1, int(rx * 0.45)), max(1, int(ry * 0.45)))
        cv2.ellipse(nucleus, (int(cx), int(cy)), axes, float(angle), 0, 360, 1.0, -1, cv2.LINE_AA)
    texture = 0.6 + 0.4 * smooth_noise(rng, h, w, cell=max(1.5, radius / 2))
    stain = np.clip(body * texture + 0.6 * nucleus * body, 0, 2)
    violet = np.asarray([0.55, 0.9, 0.35], np.float32) * float(rng.uniform(0.8, 1.6))  # OD of crystal violet
    od = stain[:, :, None] * violet + (0.12 * lattice)[:, :, None] * np.ones(3, np.float32)
    paper = float(rng.uniform(0.88, 0.98))
    rgb = paper * np.exp(-od) + grain(rng, h, w, float(rng.uniform(0.004, 0.012)), channels=3)
    objects = cell_objects(cells, h, w, "cell", 40)
    image = to_uint8(cv2.GaussianBlur(rgb, (0, 0), 0.6) * 255)
    return Panel(image, "brightfield", objects, [Negative("regular_pattern")])


def render_brightfield(
    rng: np.random.Generator, h: int, w: int, allow_sources: set[str] | None = None, look: dict | None = None
) -> Panel:
    """A scikit-image photograph (35 % when no ``look`` is imposed and one is still unused), else phase contrast
    or transwell as ``look`` says (see :func:`brightfield_look`)."""
    allowed = [s for s in ("cell", "ihc", "retina") if allow_sources is None or s in allow_sources]
    if look is None and allowed and rng.random() < 0.35:
        name = allowed[int(rng.integers(0, len(allowed)))]
        if allow_sources is not None:
            allow_sources.discard(name)
        image = source_crop(rng, name, h, w).astype(np.float32)
        gain, bias = rng.uniform(0.85, 1.15), rng.uniform(-15, 15)
        image = image * gain + bias + grain(rng, h, w, float(rng.uniform(0.5, 3.0)), channels=3)
        return Panel(to_uint8(image), "brightfield")
    look = look or brightfield_look(rng)
    if look["kind"] == "transwell":
        return render_transwell(rng, h, w, look)
    return render_phase_contrast(rng, h, w, look)

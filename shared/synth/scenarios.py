"""Targeted cases the real test set is full of, which the general generator rarely makes (issue 12).

A share of the cases of each split (``synth.generator.scenarios.share``) is one of these instead of a
general figure:

forged
  ``panel_copy``    a grid of alike panels where one panel is, whole, another one under a flip or turn
  ``zoom_copy``     60-85 % of a panel rescaled to fill another panel (a zoomed / cropped duplicate)
  ``overlap_copy``  two panels that are fields of view of one scene sharing part of it
  ``tiny_copy``     a single micrograph with an object of 0.03-0.2 % of the image pasted elsewhere
authentic (hard negatives, test split only)
  ``loading_rows``  blot panels of one loading control: same bands, own lane loads, own grain
  ``serial_frames`` time-lapse frames / adjacent sections: one scene drifting and deforming slightly,
                    each frame with its own noise
  ``vignette``      circular vignettes (dish, fundus) whose round black borders mirror each other

Blots here look scanned (smooth bands, blur, little grain). Grids come with white gutters, touching
panels or a black page, sometimes thin frames, letters inside or above the panels. Forged scenario
figures are JPEG'd after forging with their own odds (``scenarios.jpeg_prob``). Every panel box is
recorded (``Case.panel_boxes``), so panel finding can be scored.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from shared.synth import text
from shared.synth.config import SynthConfig, pick
from shared.synth.families.blot import lane_layout, random_style, render_strip
from shared.synth.families.brightfield import render_phase_contrast
from shared.synth.families.microscopy import render_em, render_fluorescence
from shared.synth.families.tissue import render_tissue
from shared.synth.figure import Box, Figure, Negative, PlacedPanel
from shared.synth.forge import GAP, Copy, Operation, _blob, geometric_transform
from shared.synth.textures import to_uint8

FORGED = ("panel_copy", "zoom_copy", "overlap_copy", "tiny_copy")
NEGATIVE = ("loading_rows", "serial_frames", "vignette")
MICRO = {"fluorescence": render_fluorescence, "histology": render_tissue, "em": render_em,
         "brightfield": render_phase_contrast}  # fmt: skip
D4_SQUARE = ("translate", "hflip", "vflip", "rot180", "rot90", "rot270")
D4_ANY = ("translate", "hflip", "vflip", "rot180")


@dataclass
class Grid:
    """A grid of same-sized panels: where each sits on the page and how the page looks."""

    page: tuple[int, int]  # (h, w)
    boxes: list[Box]
    background: int  # page grey level (255 white, 0 black)
    frames: bool
    letters: str  # "inside", "above" or "none"
    layout: str  # "white", "touching" or "black"
    letter_size: int = 14
    letter_chars: str = string.ascii_uppercase


@dataclass
class Scene:
    """What a scenario produces before it becomes a Case."""

    authentic: np.ndarray
    forged: np.ndarray | None
    panels: list[PlacedPanel]
    family: str
    operations: list[Operation] = field(default_factory=list)
    negatives: list[Negative] = field(default_factory=list)
    layout: str = "single"


def scenario_of(config: SynthConfig, split: str, index: int, forged: bool) -> str:
    """The scenario of a case ('' for a general one): a Weyl sequence picks which cases, a hash which one."""
    spec = config.extra.get("scenarios") or {}
    share = float(spec.get("share", {}).get(split, 0.0))
    if share <= 0 or (index * 0.7320508075688772) % 1.0 >= share:
        return ""
    weights = spec.get("forged" if forged else "authentic", {})
    if not forged and split != "test":
        return ""  # train and supplemental cases are forged twins: their negatives stay general
    if not weights:
        return ""
    keys = sorted(weights)
    rng = np.random.default_rng(np.random.SeedSequence(entropy=int(config.seed), spawn_key=(7, len(split), index)))
    return pick(rng, {k: float(weights[k]) for k in keys})


def make_scene(rng: np.random.Generator, config: SynthConfig, scenario: str) -> Scene:
    """Render one scenario figure (authentic, and forged for the forged scenarios)."""
    builders = {
        "panel_copy": _panel_copy,
        "zoom_copy": _zoom_copy,
        "overlap_copy": _overlap_copy,
        "tiny_copy": _tiny_copy,
        "loading_rows": _loading_rows,
        "serial_frames": _serial_frames,
        "vignette": _vignette,
    }
    if scenario not in builders:
        raise ValueError(f"unknown scenario {scenario!r} (known: {sorted(builders)})")
    for _ in range(10):
        scene = builders[scenario](rng, config)
        if scene is not None:
            return scene
    raise RuntimeError(f"scenario {scenario}: no valid figure in 10 draws")


# ---------------------------------------------------------------- panel content


def scanned_blot(rng: np.random.Generator, h: int, w: int, seed: int | None = None) -> np.ndarray:
    """A western-blot strip as a scan shows it: smooth bands, blurred, little grain, a little sensor noise
    (uint8 RGB). ``seed`` fixes the strip itself (bands, film, grain) but not the scan."""
    local = np.random.default_rng(seed) if seed is not None else rng
    style = replace(random_style(local), grain=float(local.uniform(0.002, 0.008)), blotch=float(local.uniform(0, 0.04)))
    centres, half = lane_layout(local, w, int(local.integers(3, 11)))
    strip = render_strip(local, h, w, style, centres, half, uniform=seed is not None, n_rows=1).image
    blur = float(rng.uniform(0.8, 2.0))
    scanned = cv2.GaussianBlur(strip.astype(np.float32), (0, 0), blur)
    sensor = rng.standard_normal(strip.shape[:2]).astype(np.float32)[:, :, None] * float(rng.uniform(0.4, 1.0))
    return to_uint8(scanned + sensor)  # the scanner's own noise, after its blur


def micro_panel(rng: np.random.Generator, family: str, h: int, w: int, look: dict | None = None) -> np.ndarray:
    return MICRO[family](rng, h, w, look=look).image


def _grey(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32).mean(axis=2)


def _differs(a: np.ndarray, b: np.ndarray, config: SynthConfig) -> bool:
    return float(np.abs(_grey(a) - _grey(b)).mean()) >= config.min_visible_change


# ---------------------------------------------------------------- grids


def _grid(rng: np.random.Generator, config: SynthConfig, rows: int, cols: int, aspect: float, dark: bool) -> Grid:
    """Page size and panel boxes of a ``rows x cols`` grid whose panels have height/width ``aspect``."""
    layout = pick(rng, {"white": 0.55, "touching": 0.25, "black": 0.2 if dark else 0.0})
    width = int(rng.uniform(max(config.min_side, 0.45 * config.max_side), config.max_side))
    margin = int(rng.uniform(0.01, 0.03) * width) + 2
    gutter = 0 if layout == "touching" else int(np.clip(width * rng.uniform(0.006, 0.02), 3, 24))
    letters = pick(rng, {"inside": 0.5, "above": 0.3 if layout == "white" else 0.0, "none": 0.2})
    letter_size = int(np.clip(width * rng.uniform(0.018, 0.03), 10, 36))
    top = int(letter_size * 1.3) if letters == "above" else 0
    pw = (width - 2 * margin - gutter * (cols - 1)) // cols
    ph = int(pw * aspect)
    height = 2 * margin + rows * (ph + top) + gutter * (rows - 1)
    if height > config.max_side:
        ph = (config.max_side - 2 * margin - gutter * (rows - 1)) // rows - top
        height = 2 * margin + rows * (ph + top) + gutter * (rows - 1)
    boxes = []
    for r in range(rows):
        for c in range(cols):
            y = margin + r * (ph + top + gutter) + top
            x = margin + c * (pw + gutter)
            boxes.append((y, x, y + ph, x + pw))
    return Grid(
        page=(max(height, config.min_side), max(width, config.min_side)),
        boxes=boxes,
        background=0 if layout == "black" else 255,
        frames=bool(rng.random() < 0.25) and layout != "black",
        letters=letters,
        layout=layout,
        letter_size=letter_size,
        letter_chars=string.ascii_uppercase if rng.random() < 0.7 else string.ascii_lowercase,
    )


def _render(grid: Grid, contents: list[np.ndarray]) -> np.ndarray:
    """Place panel contents on the page, then frames and letters (drawn last, as layout software does)."""
    image = np.full((*grid.page, 3), grid.background, np.uint8)
    for (y0, x0, y1, x1), content in zip(grid.boxes, contents, strict=True):
        image[y0:y1, x0:x1] = content
    for k, (y0, x0, y1, x1) in enumerate(grid.boxes):
        if grid.frames:
            cv2.rectangle(image, (x0, y0), (x1 - 1, y1 - 1), (0, 0, 0), 1)
        letter = grid.letter_chars[k % 26]
        if grid.letters == "inside":
            light = float(_grey(image[y0 : y0 + 2 * grid.letter_size, x0 : x0 + 2 * grid.letter_size]).mean()) > 110
            colour = (0, 0, 0) if light else (255, 255, 255)
            text.draw(image, letter, y0 + 3, x0 + 4, "sans-bold", grid.letter_size, colour)
        elif grid.letters == "above":
            text.draw(image, letter, y0 - int(grid.letter_size * 1.25), x0, "sans-bold", grid.letter_size, (0, 0, 0))
    return image


def _placed(grid: Grid, family: str) -> list[PlacedPanel]:
    return [PlacedPanel(family, box, []) for box in grid.boxes]


def _panel_mask(shape: tuple[int, int], box: Box) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[box[0] : box[2], box[1] : box[3]] = True
    return mask


def _marks(grid: Grid) -> list[str]:
    """Photometric tags of a whole-panel copy: a letter drawn over it keeps it from being pixel-exact."""
    return ["label"] if grid.letters == "inside" or grid.frames else []


def _family_grid(rng: np.random.Generator, config: SynthConfig, square: bool = False):
    """A family, its grid and independent panel contents (blots: strips; microscopy: one look)."""
    family = "blot" if rng.random() < 0.5 else pick(rng, {"fluorescence": 0.3, "histology": 0.3, "em": 0.2,
                                                          "brightfield": 0.2})  # fmt: skip
    if family == "blot":
        rows, cols = int(rng.integers(2, 5)), int(rng.integers(1, 3))
        grid = _grid(rng, config, rows, cols, float(rng.uniform(0.2, 0.45)), dark=False)
    else:
        rows, cols = int(rng.integers(1, 3)), int(rng.integers(2, 5))
        aspect = 1.0 if square or rng.random() < 0.5 else float(rng.uniform(0.75, 1.3))
        grid = _grid(rng, config, rows, cols, aspect, dark=family in ("fluorescence", "em"))
    y0, x0, y1, x1 = grid.boxes[0]
    h, w = y1 - y0, x1 - x0
    if min(h, w) < 24:
        return None
    if family == "blot":
        contents = [scanned_blot(rng, h, w) for _ in grid.boxes]
    else:
        look = __import__("shared.synth.families", fromlist=["LOOKS"]).LOOKS[family](rng)
        contents = [micro_panel(rng, family, h, w, look) for _ in grid.boxes]
    return family, grid, contents


# ---------------------------------------------------------------- forged scenarios


def _panel_pair(rng: np.random.Generator, config: SynthConfig) -> tuple | None:
    """A grid of one family and two different panels of it (source, destination), or None."""
    made = _family_grid(rng, config)
    if made is None or len(made[1].boxes) < 2:
        return None
    family, grid, contents = made
    src, dst = (int(k) for k in rng.choice(len(grid.boxes), 2, replace=False))
    return family, grid, contents, src, dst


def _pasted_scene(grid, contents: list, family: str, dst: int, patch: np.ndarray, op: Operation) -> Scene:
    """The scene whose forged figure shows ``patch`` in panel ``dst`` (one operation, ``op``)."""
    forged_contents = list(contents)
    forged_contents[dst] = patch
    return Scene(_render(grid, contents), _render(grid, forged_contents), _placed(grid, family), family, [op],
                 layout=grid.layout)  # fmt: skip


def _panel_copy(rng: np.random.Generator, config: SynthConfig) -> Scene | None:
    picked = _panel_pair(rng, config)
    if picked is None:
        return None
    family, grid, contents, src, dst = picked
    h, w = contents[src].shape[:2]
    geometric = str(rng.choice(D4_SQUARE if h == w else D4_ANY))
    patch, _ = geometric_transform(contents[src], np.ones((h, w), bool), geometric)
    if not _differs(patch, contents[dst], config):
        return None
    shape = grid.page
    op = Operation("panel", _panel_mask(shape, grid.boxes[src]), grid.boxes[src], src)
    op.copies.append(Copy(_panel_mask(shape, grid.boxes[dst]), grid.boxes[dst], geometric, _marks(grid), dst))
    return _pasted_scene(grid, contents, family, dst, np.ascontiguousarray(patch), op)


def _zoom_copy(rng: np.random.Generator, config: SynthConfig) -> Scene | None:
    picked = _panel_pair(rng, config)
    if picked is None:
        return None
    family, grid, contents, src, dst = picked
    h, w = contents[src].shape[:2]
    share = float(rng.uniform(0.6, 0.85))
    ch, cw = max(8, round(h * share)), max(8, round(w * share))
    cy, cx = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    crop = contents[src][cy : cy + ch, cx : cx + cw]
    geometric = "zoom"
    if rng.random() < 0.3:
        crop = crop[:, ::-1]
        geometric = "zoom_hflip"
    patch = cv2.resize(np.ascontiguousarray(crop), (w, h), interpolation=cv2.INTER_CUBIC)
    if not _differs(patch, contents[dst], config):
        return None
    sy0, sx0 = grid.boxes[src][:2]
    src_box = (sy0 + cy, sx0 + cx, sy0 + cy + ch, sx0 + cx + cw)
    op = Operation("zoomed_panel", _panel_mask(grid.page, src_box), src_box, src)
    params = {"scale": 1.0 / share}
    op.copies.append(
        Copy(_panel_mask(grid.page, grid.boxes[dst]), grid.boxes[dst], geometric, _marks(grid), dst, params)
    )
    return _pasted_scene(grid, contents, family, dst, patch, op)


def _overlap_copy(rng: np.random.Generator, config: SynthConfig) -> Scene | None:
    """Panels ``a`` and ``b`` show two fields of view of one larger image that share part of it."""
    picked = _panel_pair(rng, config)
    if picked is None:
        return None
    family, grid, contents, a, b = picked
    h, w = contents[a].shape[:2]
    sy = round(h * rng.uniform(0.0, 0.3)) if family != "blot" else 0
    sx = round(w * rng.uniform(0.25, 0.55))
    wide = scanned_blot(rng, h + sy, w + sx) if family == "blot" else micro_panel(rng, family, h + sy, w + sx)
    authentic_contents, forged_contents = list(contents), list(contents)
    authentic_contents[a] = forged_contents[a] = wide[:h, :w]
    second = wide[sy : sy + h, sx : sx + w]
    oh, ow = h - sy, w - sx  # the shared part: a[sy:, sx:] == b[:oh, :ow]
    if not _differs(second[:oh, :ow], contents[b][:oh, :ow], config):
        return None
    forged_contents[b] = second
    before = contents[b].copy()  # the forger's own field outside the shared part, the same in both
    before[oh:, :] = second[oh:, :]
    before[:, ow:] = second[:, ow:]
    authentic_contents[b] = before
    ay0, ax0 = grid.boxes[a][:2]
    by0, bx0 = grid.boxes[b][:2]
    src_box = (ay0 + sy, ax0 + sx, ay0 + h, ax0 + w)
    dst_box = (by0, bx0, by0 + oh, bx0 + ow)
    op = Operation("overlapping_panels", _panel_mask(grid.page, src_box), src_box, a)
    op.copies.append(Copy(_panel_mask(grid.page, dst_box), dst_box, "translate", _marks(grid), b))
    return Scene(_render(grid, authentic_contents), _render(grid, forged_contents), _placed(grid, family), family,
                 [op], layout=grid.layout)  # fmt: skip


def _tiny_copy(rng: np.random.Generator, config: SynthConfig) -> Scene | None:
    """A single micrograph with one small region (0.03-0.2 % of the image, 120+ px) pasted once or twice."""
    family = pick(rng, {"fluorescence": 0.3, "histology": 0.3, "em": 0.2, "brightfield": 0.2})
    long_side = int(rng.uniform(max(config.min_side, 300), config.max_side * 0.85))
    h, w = long_side, int(long_side * rng.uniform(0.7, 1.0))
    if rng.random() < 0.5:
        h, w = w, h
    image = micro_panel(rng, family, h, w)
    area = float(np.exp(rng.uniform(np.log(max(120.0, 0.0003 * h * w)), np.log(0.002 * h * w))))
    side = max(6, int(np.sqrt(area * 1.3)))
    shape = _blob(rng, side, side)
    if shape.sum() < 60:
        return None
    sh, sw = shape.shape
    occupied = np.zeros((h, w), bool)
    for _ in range(30):
        y, x = int(rng.integers(0, h - sh)), int(rng.integers(0, w - sw))
        patch = image[y : y + sh, x : x + sw]
        if _grey(patch)[shape].std() >= config.min_source_std:
            break
    else:
        return None
    src_box = (y, x, y + sh, x + sw)
    source = _panel_mask((h, w), src_box)
    source[y : y + sh, x : x + sw] = shape
    op = Operation("small_object", source, src_box, 0)
    forged = image.copy()
    occupied |= cv2.dilate(source.astype(np.uint8), np.ones((2 * GAP + 1,) * 2, np.uint8)).astype(bool)
    for _ in range(1 + int(rng.random() < 0.3)):
        geometric = "translate" if rng.random() < 0.7 else "hflip"
        t_patch, t_mask = geometric_transform(patch, shape, geometric)
        for _ in range(40):
            ty, tx = int(rng.integers(0, h - sh)), int(rng.integers(0, w - sw))
            box = (ty, tx, ty + sh, tx + sw)
            if occupied[ty : ty + sh, tx : tx + sw][t_mask].any():
                continue
            current = forged[ty : ty + sh, tx : tx + sw]
            if np.abs(_grey(current)[t_mask] - _grey(t_patch)[t_mask]).mean() < config.min_visible_change:
                continue
            current[t_mask] = t_patch[t_mask]
            mask = np.zeros((h, w), bool)
            mask[ty : ty + sh, tx : tx + sw] = t_mask
            op.copies.append(Copy(mask, box, geometric, [], 0))
            occupied |= cv2.dilate(mask.astype(np.uint8), np.ones((2 * GAP + 1,) * 2, np.uint8)).astype(bool)
            break
    if not op.copies:
        return None
    return Scene(image, forged, [PlacedPanel(family, (0, 0, h, w), [])], family, [op])


# ---------------------------------------------------------------- hard negatives


def _jitter_frame(rng: np.random.Generator, image: np.ndarray, drift: tuple[float, float], warp_px: float,
                  noise: float) -> np.ndarray:  # fmt: skip
    """``image`` moved by a sub-pixel ``drift``, deformed by a smooth field of ``warp_px``, own noise added."""
    h, w = image.shape[:2]
    field_y = cv2.resize(rng.standard_normal((6, 6)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    field_x = cv2.resize(rng.standard_normal((6, 6)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    map_x = (xx + float(drift[0]) + warp_px * field_x).astype(np.float32)
    map_y = (yy + float(drift[1]) + warp_px * field_y).astype(np.float32)
    moved = cv2.remap(image.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    grain = rng.standard_normal((h, w)).astype(np.float32) * noise
    return to_uint8(moved + grain[:, :, None])


def _loading_rows(rng: np.random.Generator, config: SynthConfig) -> Scene | None:
    """Blot panels that each show the same loading control: one band template, the lanes' own loads,
    a slightly different placement on the scanner and each scan's own grain."""
    rows = int(rng.integers(2, 5))
    grid = _grid(rng, config, rows, 1, float(rng.uniform(0.15, 0.35)), dark=False)
    y0, x0, y1, x1 = grid.boxes[0]
    h, w = y1 - y0, x1 - x0
    if min(h, w) < 16:
        return None
    seed = int(rng.integers(0, 2**31))
    base = scanned_blot(rng, h, w, seed=seed).astype(np.float32)
    contents = []
    for _ in grid.boxes:
        paper = float(np.percentile(base, 95))
        loads = cv2.resize(rng.uniform(0.75, 1.25, (1, 12)).astype(np.float32), (w, 1), interpolation=cv2.INTER_CUBIC)
        varied = paper - (paper - base) * loads[:, :, None]
        contents.append(_jitter_frame(rng, varied, tuple(rng.uniform(-1.5, 1.5, 2)), 0.4, float(rng.uniform(1.0, 2.5))))
    image = _render(grid, contents)
    return Scene(image, None, _placed(grid, "blot"), "blot", negatives=[Negative("loading_rows")], layout=grid.layout)


def _serial_frames(rng: np.random.Generator, config: SynthConfig) -> Scene | None:
    """Consecutive frames (or adjacent sections) of one field: slow drift, small deformations, own noise."""
    family = pick(rng, {"fluorescence": 0.35, "histology": 0.35, "em": 0.15, "brightfield": 0.15})
    rows, cols = int(rng.integers(1, 3)), int(rng.integers(2, 5))
    grid = _grid(rng, config, rows, cols, 1.0, dark=family in ("fluorescence", "em"))
    y0, x0, y1, x1 = grid.boxes[0]
    h, w = y1 - y0, x1 - x0
    if min(h, w) < 24:
        return None
    pad = 12
    scene = micro_panel(rng, family, h + 2 * pad, w + 2 * pad).astype(np.float32)
    contents, drift = [], np.zeros(2)
    for _ in grid.boxes:
        drift = np.clip(drift + rng.uniform(-2.5, 2.5, 2), -pad + 2, pad - 2)
        frame = _jitter_frame(rng, scene, (float(drift[0]), float(drift[1])), float(rng.uniform(0.5, 1.5)),
                              float(rng.uniform(1.5, 4.0)))  # fmt: skip
        contents.append(frame[pad : pad + h, pad : pad + w])
    image = _render(grid, contents)
    return Scene(image, None, _placed(grid, family), family, negatives=[Negative("serial_frames")], layout=grid.layout)


def _vignette(rng: np.random.Generator, config: SynthConfig) -> Scene | None:
    """Round fields of view (dishes, fundus photographs) on black corners that mirror each other."""
    family = pick(rng, {"histology": 0.5, "brightfield": 0.5})
    rows, cols = int(rng.integers(1, 3)), int(rng.integers(2, 5))
    grid = _grid(rng, config, rows, cols, 1.0, dark=True)
    y0, x0, y1, x1 = grid.boxes[0]
    h, w = y1 - y0, x1 - x0
    if min(h, w) < 24:
        return None
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    radius = 0.5 * min(h, w) * float(rng.uniform(0.85, 0.98))
    inside = np.hypot(yy - (h - 1) / 2, xx - (w - 1) / 2) <= radius
    fade = cv2.GaussianBlur(inside.astype(np.float32), (0, 0), 1.5)[:, :, None]
    contents = []
    for _ in grid.boxes:  # each photograph: its own content, the lens's round field, the camera's own noise
        photo = micro_panel(rng, family, h, w).astype(np.float32) * fade + 6.0
        contents.append(to_uint8(photo + rng.standard_normal((h, w, 1)).astype(np.float32) * rng.uniform(1.5, 3.0)))
    image = _render(grid, contents)
    return Scene(image, None, _placed(grid, family), family, negatives=[Negative("vignette")], layout=grid.layout)


def to_figure(scene: Scene, image: np.ndarray, gray: bool) -> Figure:
    """A Figure record of a scene (panels and negatives) holding ``image``."""
    return Figure(image, panels=list(scene.panels), negatives=list(scene.negatives), compound=len(scene.panels) > 1,
                  gray=gray)  # fmt: skip

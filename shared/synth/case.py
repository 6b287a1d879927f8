"""One case: an authentic figure, its forged version (or not, for authentic test images), files' looks."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import cv2
import numpy as np

from shared.synth.config import SynthConfig, case_rng
from shared.synth.figure import GRAY_FAMILIES
from shared.synth.forge import NoRoomError, Operation, forge
from shared.synth.layout import compose
from shared.synth.scenarios import make_scene, scenario_of


@dataclass
class Case:
    """Everything one case writes, plus what the manifest and the tests need to know about it."""

    split: str
    index: int
    figure_families: list[str]
    compound: bool
    n_panels: int
    gray: bool
    authentic: np.ndarray | None  # None for forged-only splits (supplemental, forged test images)
    forged: np.ndarray | None  # None for authentic test images
    operations: list[Operation] = field(default_factory=list)
    negatives: list = field(default_factory=list)
    base_jpeg: int = 0
    forged_jpeg: int = 0
    authentic_jpeg: int = 0
    forged_mode: str = ""
    authentic_mode: str = ""
    authentic_clean: np.ndarray | None = None  # the figure before forging and post-forgery JPEG (for tests)
    transparent_white: bool = False  # RGBA files: alpha 0 on pure-white paper (else alpha 255 everywhere)
    family: str = ""  # the forged panel's family, else the family covering the most panel area
    scenario: str = ""  # a targeted case of shared.synth.scenarios ("" for a general figure)
    layout: str = ""  # scenario grids: "white", "touching" or "black" page; "single"; "" for general figures
    panel_boxes: list = field(default_factory=list)  # every panel's (y0, x0, y1, x1), for panel-finding scores

    @cached_property
    def masks(self) -> np.ndarray | None:
        """``(N, H, W)`` uint8 ground truth, one channel per operation (``None`` when not forged)."""
        if self.forged is None:
            return None
        return np.stack([op.mask for op in self.operations]).astype(np.uint8)


def jpeg_roundtrip(image: np.ndarray, quality: int, gray: bool) -> np.ndarray:
    """Encode and decode as JPEG (gray images stay single-channel so they remain exactly gray)."""
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    source = np.ascontiguousarray(image[:, :, 0]) if gray else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", source, params)
    if not ok:
        raise OSError("JPEG encoding failed")
    if gray:
        return np.repeat(cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)[:, :, None], 3, axis=2)
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _maybe_jpeg(rng: np.random.Generator, image: np.ndarray, prob: float, quality, gray: bool):
    if rng.random() >= prob:
        return image, 0
    q = int(rng.integers(int(quality[0]), int(quality[1]) + 1))
    return jpeg_roundtrip(image, q, gray), q


def _mode(rng: np.random.Generator, gray: bool, config: SynthConfig) -> str:
    if gray:
        return "L" if rng.random() < config.modes.get("gray_png", 0.85) else "RGB"
    return "RGBA" if rng.random() < config.modes.get("rgba", 0.15) else "RGB"


def make_case(config: SynthConfig, split: str, index: int) -> Case:
    """Generate case ``index`` of ``split``; a pure function of (config, split, index)."""
    rng = case_rng(config.seed, split, index)
    # Weyl sequences (two different irrationals): the compound and forged shares of any run of indices stay
    # close to their targets, and the two choices are not tied to each other
    compound = bool(_weyl(index, 0.41421356237309515) < config.compound_frac[split])
    forged_wanted = split != "test" or _weyl(index, 0.6180339887498949) < config.test_forged_frac
    scenario = scenario_of(config, split, index, forged_wanted)
    if scenario:
        return _scenario_case(config, split, index, scenario, forged_wanted, rng)
    jpeg = config.jpeg
    for _ in range(10):  # a figure with no room for a copy is redrawn (same RNG stream: still deterministic)
        figure = compose(rng, config, compound)
        figure.image, base_q = _maybe_jpeg(rng, figure.image, jpeg["base_prob"], jpeg["quality"], figure.gray)
        figure.keep_true_negatives()
        if not forged_wanted:
            break
        try:
            forged, ops = forge(rng, figure, config)
            break
        except NoRoomError:
            continue
    else:
        raise RuntimeError(f"{split} case {index}: no figure with room for a copy-move in 10 draws")
    case = Case(
        split=split,
        index=index,
        figure_families=figure.families,
        compound=compound,
        n_panels=len(figure.panels),
        gray=figure.gray,
        authentic=None,
        forged=None,
        negatives=list(figure.negatives),
        base_jpeg=base_q,
        transparent_white=bool(rng.random() < 0.5),
        family=_main_family(figure),
        panel_boxes=[p.box for p in figure.panels],
    )
    if forged_wanted:
        case.forged, case.forged_jpeg = _maybe_jpeg(rng, forged, jpeg["post_prob"], jpeg["quality"], figure.gray)
        case.operations = ops
        case.family = figure.panels[ops[0].src_panel].family
        case.forged_mode = _mode(rng, figure.gray, config)
    case.authentic_clean = figure.image
    if split == "train" or not forged_wanted:
        # same JPEG odds as the forged image: compression must not betray the label
        case.authentic, case.authentic_jpeg = _maybe_jpeg(
            rng, figure.image, jpeg["post_prob"], jpeg["quality"], figure.gray
        )
        case.authentic_mode = _mode(rng, figure.gray, config)
        if split == "train" and rng.random() >= config.modes.get("twin_mode_change", 0.1):
            case.forged_mode = case.authentic_mode
    return case


def _scenario_case(
    config: SynthConfig, split: str, index: int, scenario: str, forged_wanted: bool, rng: np.random.Generator
) -> Case:
    """A case of ``shared.synth.scenarios`` (JPEG after forging with the scenarios' own odds)."""
    scene = make_scene(rng, config, scenario)
    spec = config.extra["scenarios"]
    quality = config.jpeg["quality"]
    gray = scene.family in GRAY_FAMILIES and rng.random() < config.modes["gray_when_possible"]
    if gray:
        scene.authentic = _to_gray(scene.authentic)
        scene.forged = _to_gray(scene.forged) if scene.forged is not None else None
    case = Case(
        split=split,
        index=index,
        figure_families=[scene.family],
        compound=len(scene.panels) > 1,
        n_panels=len(scene.panels),
        gray=gray,
        authentic=None,
        forged=None,
        negatives=list(scene.negatives),
        transparent_white=bool(rng.random() < 0.5),
        family=scene.family,
        scenario=scenario,
        layout=scene.layout,
        panel_boxes=[p.box for p in scene.panels],
    )
    if forged_wanted:
        case.forged, case.forged_jpeg = _maybe_jpeg(rng, scene.forged, spec["jpeg_prob"], quality, gray)
        case.operations = scene.operations
        case.forged_mode = _mode(rng, gray, config)
    case.authentic_clean = scene.authentic
    if split == "train" or not forged_wanted:
        case.authentic, case.authentic_jpeg = _maybe_jpeg(rng, scene.authentic, spec["jpeg_prob"], quality, gray)
        case.authentic_mode = _mode(rng, gray, config)
        if split == "train":
            case.forged_mode = case.authentic_mode
    return case


def _to_gray(image: np.ndarray) -> np.ndarray:
    return np.repeat(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2)


def _main_family(figure) -> str:
    area: dict[str, int] = {}
    for panel in figure.panels:
        area[panel.family] = area.get(panel.family, 0) + panel.height * panel.width
    return max(area, key=area.get) if area else ""


def _weyl(index: int, alpha: float) -> float:
    return (index * alpha) % 1.0

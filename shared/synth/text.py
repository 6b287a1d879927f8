"""Text for figures: fonts shipped inside matplotlib's wheel, glyphs rendered to coverage masks, a vocabulary.

Fonts are located without importing matplotlib (its ``mpl-data`` folder is found through the import
system), so nothing here depends on system fonts and results are identical on every machine.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONT_FILES = {
    "sans": "DejaVuSans.ttf",
    "sans-bold": "DejaVuSans-Bold.ttf",
    "serif": "STIXGeneral.ttf",  # Times-like, the most common face in biomedical figures
    "serif-bold": "STIXGeneralBol.ttf",
    "serif-italic": "STIXGeneralItalic.ttf",
    "dejavu-serif": "DejaVuSerif.ttf",
    "dejavu-serif-bold": "DejaVuSerif-Bold.ttf",
}


@lru_cache(maxsize=1)
def font_dir() -> Path:
    """matplotlib's bundled TrueType folder."""
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or spec.origin is None:
        raise RuntimeError("matplotlib is not installed: the synthetic generator needs its bundled fonts")
    folder = Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf"
    if not folder.is_dir():
        raise RuntimeError(f"{folder}: matplotlib's bundled fonts are missing")
    return folder


@lru_cache(maxsize=256)
def font(face: str, size: int) -> ImageFont.FreeTypeFont:
    """A TrueType font by face name (see ``FONT_FILES``) and pixel size."""
    if face not in FONT_FILES:
        raise KeyError(f"unknown font face {face!r}; known: {', '.join(FONT_FILES)}")
    return ImageFont.truetype(str(font_dir() / FONT_FILES[face]), max(6, int(size)))


@lru_cache(maxsize=4096)
def _coverage(text: str, face: str, size: int, angle: int) -> np.ndarray:
    f = font(face, size)
    left, top, right, bottom = f.getbbox(text)
    width, height = max(1, right - left), max(1, bottom - top)
    canvas = Image.new("L", (width + 2, height + 2), 0)
    ImageDraw.Draw(canvas).text((1 - left, 1 - top), text, font=f, fill=255)
    if angle % 360 == 90:
        canvas = canvas.transpose(Image.Transpose.ROTATE_90)
    elif angle % 360:
        canvas = canvas.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
    coverage = np.asarray(canvas)
    coverage.setflags(write=False)
    return coverage


def coverage(text: str, face: str, size: int, angle: int = 0) -> np.ndarray:
    """Anti-aliased glyph coverage (uint8, 0 = paper) of ``text``; ``angle`` in degrees counter-clockwise."""
    return _coverage(text, face, int(size), int(angle))


def text_size(text: str, face: str, size: int, angle: int = 0) -> tuple[int, int]:
    """``(height, width)`` of the rendered text box."""
    return coverage(text, face, size, angle).shape[:2]


def draw(
    canvas: np.ndarray, text: str, y: int, x: int, face: str, size: int, colour=(0, 0, 0), angle: int = 0
) -> tuple[int, int, int, int]:
    """Blend ``text`` into an RGB ``canvas`` with its top-left at ``(y, x)``; returns the clipped box drawn.

    Box is ``(y0, x0, y1, x1)``; text falling outside the canvas is clipped.
    """
    cov = coverage(text, face, size, angle)
    h, w = cov.shape
    y0, x0 = max(0, y), max(0, x)
    y1, x1 = min(canvas.shape[0], y + h), min(canvas.shape[1], x + w)
    if y1 <= y0 or x1 <= x0:
        return (y0, x0, y0, x0)
    alpha = cov[y0 - y : y1 - y, x0 - x : x1 - x, None].astype(np.float32) / 255.0
    region = canvas[y0:y1, x0:x1].astype(np.float32)
    blended = region * (1.0 - alpha) + np.asarray(colour, np.float32) * alpha
    canvas[y0:y1, x0:x1] = np.round(blended).astype(np.uint8)
    return (y0, x0, y1, x1)


# Vocabulary. Greek letters and the minus sign are what real figure labels use.
PROTEINS = [
    "β-actin",
    "GAPDH",
    "α-Tubulin",
    "Histone H3",
    "Survivin",
    "PARP",
    "Cleaved PARP",
    "Caspase-3",
    "Cleaved Caspase-3",
    "Caspase-8",
    "Caspase-9",
    "Bcl-2",
    "Bax",
    "p53",
    "p21",
    "Cyclin D1",
    "CDK4",
    "p-AKT",
    "AKT",
    "p-ERK1/2",
    "ERK1/2",
    "p-mTOR",
    "mTOR",
    "p-p65",
    "NF-κB p65",
    "IκBα",
    "HIF-1α",
    "E-cadherin",
    "N-cadherin",
    "Vimentin",
    "Snail",
    "Smad3",
    "p-Smad3",
    "TGF-β RII",
    "LC3-II",
    "LC3-I",
    "Beclin-1",
    "p62",
    "MMP-2",
    "MMP-9",
    "VEGF",
    "Nrf2",
    "HO-1",
    "STAT3",
    "p-STAT3",
    "c-Myc",
    "PCNA",
    "Ki-67",
    "COX-2",
    "iNOS",
    "TNF-α",
    "IL-6",
    "HMGA2",
    "YAP",
    "TAZ",
    "β-catenin",
    "SIRT1",
    "Lamin B1",
]
CONDITIONS = [
    "Control",
    "Ctrl",
    "Sham",
    "Model",
    "NC",
    "siNC",
    "siRNA",
    "sh-NC",
    "shRNA",
    "KD",
    "OE",
    "Vector",
    "DMSO",
    "Vehicle",
    "Mock",
    "WT",
    "KO",
    "LPS",
    "TNF-α",
    "H2O2",
    "Normal",
    "Treated",
    "Low",
    "Medium",
    "High",
    "miR-NC",
    "mimic",
    "inhibitor",
    "Blank",
    "DEX",
    "Rapa",
    "3-MA",
    "CQ",
    "Baf A1",
]
CELL_LINES = [
    "MCF7",
    "BT474",
    "HeLa",
    "A549",
    "HepG2",
    "HCT116",
    "SW480",
    "PC3",
    "U87",
    "HEK293T",
    "Ishikawa",
    "HEC-1",
    "SK-OV-3",
    "RAW264.7",
    "H9c2",
    "HUVEC",
]
STAINS = ["DAPI", "TUNEL", "Merge", "Ki-67", "CD31", "α-SMA", "F-actin", "GFP", "LC3", "Hoechst", "PI", "EdU"]
TISSUES = [
    "Liver",
    "Kidney",
    "Spleen",
    "Lung",
    "Heart",
    "Brain",
    "Colon",
    "Stomach",
    "Thymus",
    "Adipose",
    "Small intestine",
    "Cerebellum",
    "Skin",
    "Tumor",
]
Y_AXIS = [
    "Relative expression",
    "Cell viability (%)",
    "Relative protein level",
    "Tumor volume (mm³)",
    "Fold change",
    "OD 450 nm",
    "Apoptosis rate (%)",
    "Relative mRNA level",
    "Body weight (g)",
    "IL-6 (pg/ml)",
    "Migration (%)",
    "Colony number",
    "Relative luciferase activity",
    "Positive cells (%)",
]
X_AXIS = ["Days", "Time (h)", "Weeks", "Concentration (μM)", "Days after treatment", "Hours"]

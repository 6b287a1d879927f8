"""The records the generator passes around: panels with their objects, figures, hard negatives."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

Box = tuple[int, int, int, int]  # y0, x0, y1, x1 (half-open), in the coordinates of the owning image

# Families whose content a forger copies (charts are drawn data, not photographed content).
FORGEABLE = {"blot", "gel", "fluorescence", "histology", "brightfield", "em"}
# Families that are gray by nature (a figure made only of these may be saved as an 8-bit gray PNG).
GRAY_FAMILIES = {"blot", "gel", "em", "chart"}


@dataclass
class Obj:
    """A whole object (a band, a cell) a forger may duplicate; ``mask`` covers ``box`` (bool)."""

    kind: str
    box: Box
    mask: np.ndarray

    def shifted(self, dy: int, dx: int) -> Obj:
        y0, x0, y1, x1 = self.box
        return Obj(self.kind, (y0 + dy, x0 + dx, y1 + dy, x1 + dx), self.mask)


@dataclass
class Negative:
    """Genuinely repeated content that is not a forgery; ``boxes`` (if any) are two near-identical places."""

    kind: str
    boxes: tuple[Box, Box] | None = None

    def shifted(self, dy: int, dx: int) -> Negative:
        if self.boxes is None:
            return self
        return Negative(self.kind, tuple(shift_box(b, dy, dx) for b in self.boxes))  # type: ignore[arg-type]


@dataclass
class Panel:
    """One rendered panel before placement; boxes are in panel coordinates."""

    image: np.ndarray
    family: str
    objects: list[Obj] = field(default_factory=list)
    negatives: list[Negative] = field(default_factory=list)
    meta: dict = field(default_factory=dict)  # renderer facts the layout uses (lane centres, ladder rows)

    @property
    def shape(self) -> tuple[int, int]:
        return self.image.shape[:2]


@dataclass
class PlacedPanel:
    """A panel inside a figure: where it sits and what a forger may copy from it (figure coordinates)."""

    family: str
    box: Box
    objects: list[Obj]

    @property
    def forgeable(self) -> bool:
        return self.family in FORGEABLE

    @property
    def height(self) -> int:
        return self.box[2] - self.box[0]

    @property
    def width(self) -> int:
        return self.box[3] - self.box[1]


@dataclass
class Figure:
    """A composed authentic figure."""

    image: np.ndarray
    panels: list[PlacedPanel] = field(default_factory=list)
    negatives: list[Negative] = field(default_factory=list)
    compound: bool = False
    gray: bool = False

    @property
    def families(self) -> list[str]:
        return sorted({p.family for p in self.panels})

    def place(self, panel: Panel, y: int, x: int) -> PlacedPanel:
        """Paste ``panel`` with its top-left at ``(y, x)`` and record it."""
        h, w = panel.shape
        self.image[y : y + h, x : x + w] = panel.image
        placed = PlacedPanel(panel.family, (y, x, y + h, x + w), [o.shifted(y, x) for o in panel.objects])
        self.panels.append(placed)
        self.negatives.extend(n.shifted(y, x) for n in panel.negatives)
        return placed

    def crop(self, y0: int, x0: int, y1: int, x1: int) -> None:
        """Keep ``[y0:y1, x0:x1]``; every recorded box moves with the pixels (panels must lie inside)."""
        self.image = np.ascontiguousarray(self.image[y0:y1, x0:x1])
        self.panels = [
            PlacedPanel(p.family, shift_box(p.box, -y0, -x0), [o.shifted(-y0, -x0) for o in p.objects])
            for p in self.panels
        ]
        self.negatives = [n.shifted(-y0, -x0) for n in self.negatives]

    def keep_true_negatives(self, tolerance: float = 8.0) -> None:
        """Drop recorded repeats that later drawing or compression broke; only true repeats are claimed."""
        self.negatives = [
            n for n in self.negatives if n.boxes is None or still_repeated(self.image, n.boxes, tolerance)
        ]


def still_repeated(image: np.ndarray, boxes, tolerance: float = 8.0) -> bool:
    """Whether two same-sized boxes hold near-identical content (up to grain: compared after a light blur)."""
    (a0, a1, a2, a3), (b0, b1, b2, b3) = boxes
    if (a2 - a0, a3 - a1) != (b2 - b0, b3 - b1) or a2 <= a0 or a3 <= a1:
        return False
    if min(a0, a1, b0, b1) < 0 or max(a2, b2) > image.shape[0] or max(a3, b3) > image.shape[1]:
        return False
    crop_a = cv2.GaussianBlur(image[a0:a2, a1:a3].astype(np.float32), (0, 0), 1.5)
    crop_b = cv2.GaussianBlur(image[b0:b2, b1:b3].astype(np.float32), (0, 0), 1.5)
    return float(np.abs(crop_a - crop_b).mean()) <= tolerance


def shift_box(box: Box, dy: int, dx: int) -> Box:
    return (box[0] + dy, box[1] + dx, box[2] + dy, box[3] + dx)


def box_area(box: Box) -> int:
    return max(0, box[2] - box[0]) * max(0, box[3] - box[1])

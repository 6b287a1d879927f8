"""What a figure draws around and on its panels: scale bars, frames, lane labels, panel letters."""

from __future__ import annotations

import string
from dataclasses import dataclass, field

import cv2
import numpy as np

from shared.synth import text
from shared.synth.families.chart import TextStyle
from shared.synth.figure import Box, Figure, Negative
from shared.synth.textures import SKIMAGE_SOURCES


@dataclass
class Context:
    """Figure-wide style and bookkeeping shared by the block renderers."""

    rng: np.random.Generator
    figure: Figure
    text: TextStyle
    letter_face: str
    letter_size: int
    letters: str
    gutter: int
    borders: bool
    sources: set[str] = field(default_factory=lambda: set(SKIMAGE_SOURCES))
    n_letters: int = 0
    drawn: dict = field(default_factory=dict)  # (text, face, size, angle) -> box of its first drawing

    def write(self, label: str, y: int, x: int, face: str, size: int, colour=(0, 0, 0), angle: int = 0) -> Box:
        """Draw a label on the figure; a label drawn twice (same text and style) is a repeated-label hard negative."""
        box = text.draw(self.figure.image, label, y, x, face, size, colour, angle)
        key = (label, face, int(size), int(angle), tuple(colour))
        first = self.drawn.get(key)
        if first is None:
            self.drawn[key] = box
        elif first != "paired" and not touch(first, box) and dims(first) == dims(box):
            self.figure.negatives.append(Negative("repeated_labels", (first, box)))
            self.drawn[key] = "paired"  # one pair per label is enough
        return box

    def next_letter(self) -> str:
        letter = self.letters[self.n_letters % len(self.letters)]
        self.n_letters += 1
        return letter


def figure_style(rng: np.random.Generator, width: int) -> tuple[TextStyle, str, int, str]:
    """Label typeface and size (scaled to the figure width), panel-letter face, size and case."""
    serif = rng.random() < 0.6
    face = "serif" if serif else "sans"
    size = int(np.clip(width * rng.uniform(0.013, 0.022), 10, 40))
    letter_face = "sans-bold" if rng.random() < 0.6 else "serif-bold"
    letters = string.ascii_uppercase if rng.random() < 0.75 else string.ascii_lowercase
    letter_size = int(size * rng.uniform(1.15, 1.7))
    return TextStyle(face, "serif-bold" if serif else "sans-bold", size), letter_face, letter_size, letters


def frame(canvas: np.ndarray, box: Box, width: int = 1, colour=(0, 0, 0)) -> None:
    """A rectangle just outside ``box`` (the panel's own pixels stay untouched)."""
    y0, x0, y1, x1 = box
    cv2.rectangle(canvas, (x0 - width, y0 - width), (x1 - 1 + width, y1 - 1 + width), colour, width)


@dataclass(frozen=True)
class BarSpec:
    """One scale bar look, reused on every panel of a grid (identical bars: a hard negative)."""

    length: int
    thickness: int
    colour: tuple[int, int, int]
    margin: int
    label: str | None
    face: str
    size: int


def scale_bar_spec(rng: np.random.Generator, ph: int, pw: int, dark: bool, face: str, size: int) -> BarSpec | None:
    if rng.random() < 0.2 or min(ph, pw) < 40:
        return None
    colour = (255, 255, 255) if dark or rng.random() < 0.3 else (0, 0, 0)
    label = f"{int(rng.choice([10, 20, 50, 100, 200]))} μm" if rng.random() < 0.35 else None
    return BarSpec(
        length=max(6, int(pw * rng.uniform(0.1, 0.25))),
        thickness=max(2, int(ph * rng.uniform(0.012, 0.03))),
        colour=colour,
        margin=max(3, int(min(ph, pw) * rng.uniform(0.04, 0.08))),
        label=label,
        face=face,
        size=max(8, int(size * 0.8)),
    )


def draw_scale_bar(canvas: np.ndarray, box: Box, spec: BarSpec) -> Box:
    """Draw the bar (and its label) in the bottom-right corner of a panel; returns the bar's box."""
    y0, _x0, y1, x1 = box
    by1, bx1 = y1 - spec.margin, x1 - spec.margin
    by0, bx0 = by1 - spec.thickness, bx1 - spec.length
    canvas[by0:by1, bx0:bx1] = spec.colour
    if spec.label:
        th, tw = text.text_size(spec.label, spec.face, spec.size)
        if by0 - th - 2 > y0:
            text.draw(
                canvas, spec.label, by0 - th - 2, bx0 + (spec.length - tw) // 2, spec.face, spec.size, spec.colour
            )
    return (by0, bx0, by1, bx1)


def scale_bar(ctx: Context, box: Box, dark_content: bool) -> None:
    h, w = box[2] - box[0], box[3] - box[1]
    spec = scale_bar_spec(ctx.rng, h, w, dark_content, ctx.text.face, ctx.text.size)
    if spec is not None:
        draw_scale_bar(ctx.figure.image, box, spec)


def dims(box: Box) -> tuple[int, int]:
    return box[2] - box[0], box[3] - box[1]


def touch(a: Box, b: Box) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


# ---------------------------------------------------------------- lane labels above blots


@dataclass(frozen=True)
class LaneRow:
    """One row of lane labels: ``header`` (a group name over all lanes), ``names`` or ``signs``."""

    kind: str
    labels: tuple[str, ...]
    title: str = ""  # treatment name written left of a signs row
    angle: int = 0


def lane_rows(rng: np.random.Generator, n_lanes: int) -> list[LaneRow]:
    rows = []
    if rng.random() < 0.3:
        rows.append(LaneRow("header", (str(rng.choice(text.CELL_LINES)),)))
    if rng.random() < 0.5:
        names = rng.choice(text.CONDITIONS, size=n_lanes, replace=n_lanes > len(text.CONDITIONS))
        rows.append(LaneRow("names", tuple(str(n) for n in names), angle=int(rng.choice([0, 30, 45, 90]))))
    n_signs = int(rng.choice([0, 1, 2], p=[0.15, 0.5, 0.35])) if rows else int(rng.integers(1, 3))
    treatments = rng.choice(["RAD001", "YM155", "LPS", "DEX", "siRNA", "TNF-α", "IL-6", "Dox", "Rapa"], 2, False)
    for t in range(n_signs):
        signs = tuple("+" if v else "−" for v in rng.random(n_lanes) < 0.5)
        rows.append(LaneRow("signs", signs, title=str(treatments[t]) if rng.random() < 0.6 else ""))
    return rows


def lane_rows_height(rows: list[LaneRow], face: str, size: int) -> int:
    total = 0
    for row in rows:
        if row.kind == "names":
            total += max(text.text_size(n, face, size, row.angle)[0] for n in row.labels) + size // 2
        else:
            total += int(size * 1.5)
    return total + (size // 2 if rows else 0)


def draw_lane_rows(
    ctx: Context, rows: list[LaneRow], x_lanes: int, y0: int, width: int, centres, title_x: int | None
) -> None:
    """Draw label rows over lanes starting at ``x_lanes`` (repeated signs and names register as hard negatives)."""
    canvas, face, size = ctx.figure.image, ctx.text.face, ctx.text.size
    y = y0
    for row in rows:
        if row.kind == "header":  # a second blot group names its own cell line
            name = row.labels[0] if title_x is not None else str(ctx.rng.choice(text.CELL_LINES))
            th, tw = text.text_size(name, ctx.text.bold_face, size)
            ctx.write(name, y, x_lanes + (width - tw) // 2, ctx.text.bold_face, size)
            cv2.line(
                canvas, (x_lanes + 2, y + th + 4), (x_lanes + width - 3, y + th + 4), (0, 0, 0), max(1, size // 12)
            )
            y += int(size * 1.5)
        elif row.kind == "signs":
            for label, cx in zip(row.labels, centres, strict=True):
                th, tw = text.text_size(label, face, size)
                ctx.write(label, y, x_lanes + round(cx) - tw // 2, face, size)
            if row.title and title_x is not None:
                th, tw = text.text_size(row.title, face, size)
                ctx.write(row.title, y, max(0, x_lanes - tw - size // 2), face, size)
            y += int(size * 1.5)
        else:
            tallest = max(text.text_size(n, face, size, row.angle)[0] for n in row.labels)
            for label, cx in zip(row.labels, centres, strict=True):
                th, tw = text.text_size(label, face, size, row.angle)
                x = x_lanes + round(cx) - (tw // 2 if row.angle in (0, 90) else tw // 4)
                ctx.write(label, y + tallest - th, x, face, size, angle=row.angle)
            y += tallest + size // 2

"""Writing and validating ``submission.csv`` so that Kaggle never rejects it.

Ids are image paths relative to the images folder without the suffix: for Kaggle's flat
``test_images/`` that is the file stem, i.e. the ``case_id``.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from shared.dataset import IMAGE_SUFFIXES
from shared.images import ImageReadError, read_size
from shared.metric import read_csv_strict
from shared.rle import AUTHENTIC, RLEError, decode, split_instances

HEADER = ["case_id", "annotation"]


def image_ids(folder: str | Path) -> dict[str, Path]:
    """``{id: path}`` for every image under ``folder`` (recursive); raises on two files with one id."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: images folder does not exist")
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            key = path.relative_to(folder).with_suffix("").as_posix()
            if key in found:
                raise ValueError(f"{path}: id {key!r} already used by {found[key]}")
            found[key] = path
    return found


def ordered_ids(folder: str | Path, sample_submission: str | Path | None = None) -> list[str]:
    """Ids in ``sample_submission.csv`` order when given (Kaggle's order), else sorted."""
    if sample_submission is not None and Path(sample_submission).is_file():
        return read_csv_strict(str(sample_submission))["case_id"].tolist()
    return list(image_ids(folder))


def write_submission(annotations: Mapping[str, str], order: Iterable[str], path: str | Path) -> None:
    """Write ``case_id,annotation`` rows in ``order``; ids without an annotation become ``authentic``.

    Atomic: the rows go to a temporary file in the same folder, which is flushed to disk and then
    renamed over ``path`` (``os.replace``), so ``path`` is at every moment either the previous complete
    file or the new complete one, never half written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(HEADER)
            for case_id in order:
                writer.writerow([case_id, annotations.get(case_id, AUTHENTIC)])
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def annotation_problems(case_id: str, annotation: object, shape: tuple[int, int] | None) -> list[str]:
    """Everything wrong with one submission cell (empty list when Kaggle will accept and score it)."""
    if not isinstance(annotation, str) or annotation == "":
        return [f"case_id {case_id}: empty annotation (breaks the whole submission)"]
    if annotation == AUTHENTIC:
        return []
    if annotation.strip().lower() == AUTHENTIC:
        return [f"case_id {case_id}: {annotation!r} is not the literal 'authentic' (scores 0)"]
    problems = []
    seen: list[bytes] = []
    for i, part in enumerate(split_instances(annotation)):
        where = f"case_id {case_id}: instance {i + 1}"
        if part.strip() in ("", "[]"):
            problems.append(f"{where}: empty instance {part!r}" + (" (trailing ';')" if part == "" else ""))
            continue
        try:
            mask = decode(part, shape) if shape else None
        except RLEError as exc:
            problems.append(f"{where}: {exc}")
            continue
        if mask is not None:
            if not mask.any():
                problems.append(f"{where}: decodes to an empty mask (runs outside the image)")
                continue
            key = np.packbits(mask).tobytes()
            if key in seen:
                problems.append(f"{where}: duplicate of an earlier instance (halves the row's score)")
            seen.append(key)
    return problems


def validate_submission(
    frame: pd.DataFrame, shapes: Mapping[str, tuple[int, int]], name: str = "submission"
) -> list[str]:
    """All problems of a submission frame against the expected ids and image shapes."""
    if list(frame.columns) != HEADER:
        return [f"{name}: header must be exactly {','.join(HEADER)}, got {','.join(map(str, frame.columns))}"]
    problems = []
    ids = frame["case_id"].astype(str)
    for dup in sorted(ids[ids.duplicated()].unique()):
        problems.append(f"{name}: case_id {dup} appears more than once")
    for missing in sorted(set(shapes) - set(ids)):
        problems.append(f"{name}: case_id {missing} is missing")
    for unknown in sorted(set(ids) - set(shapes)):
        problems.append(f"{name}: case_id {unknown} has no image")
    for case_id, annotation in zip(ids, frame["annotation"], strict=True):
        problems += [f"{name}: {p}" for p in annotation_problems(case_id, annotation, shapes.get(case_id))]
    return problems


def image_shapes(folder: str | Path) -> tuple[dict[str, tuple[int, int]], list[str]]:
    """``{id: (H, W)}`` from image headers, plus a problem line for each unreadable image."""
    shapes, problems = {}, []
    for key, path in image_ids(folder).items():
        try:
            shapes[key] = read_size(path)
        except ImageReadError as exc:
            problems.append(str(exc))
    return shapes, problems


def validate_submission_file(path: str | Path, images: str | Path) -> list[str]:
    """Problems of a submission CSV against a folder of images (empty list = valid)."""
    shapes, problems = image_shapes(images)
    return problems + validate_submission(read_csv_strict(str(path)), shapes, str(path))

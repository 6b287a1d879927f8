"""Run the matcher over many images, in worker processes, in input order, never sunk by one bad file.

Each worker is single-threaded (OpenCV and BLAS), so results are the same whatever ``jobs`` is and
``jobs`` processes use ``jobs`` cores. A file that cannot be read, or an image the matcher fails on,
comes back as ``authentic`` with the error text; the caller logs it and carries on.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from models.matcher.config import MatcherParams
from models.matcher.features import empty_features
from models.matcher.pipeline import MatchResult, match_image
from shared.images import load_image, read_size
from shared.maps import quantize
from shared.rle import AUTHENTIC, format_annotation

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Task:
    key: str  # uid or submission id
    path: str
    want_prob: bool = False  # return the uint8 probability map (OOF stage)
    overlay: str | None = None  # write the overlay PNG here
    details: str | None = None  # write a JSON summary here


@dataclass
class Outcome:
    key: str
    annotation: str
    features: dict[str, float]
    prob: np.ndarray | None = None  # uint8, native size
    error: str | None = None
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def run_task(task: Task, params: MatcherParams) -> Outcome:
    """Match one image file; any failure becomes an ``authentic`` outcome carrying the error."""
    start, cpu_start = time.perf_counter(), time.process_time()
    try:
        image = load_image(task.path)
        cpu_start = time.process_time()  # matching cost only (decoding is the caller's business)
        result = match_image(image, params)
        extra = {
            "cpu_seconds": time.process_time() - cpu_start,
            "megapixels": image.shape[0] * image.shape[1] / 1e6,
            "panels": [box for box, _ in result.panels],  # native (y0, x0, y1, x1) of every panel found
        }
        annotation = format_annotation(result.operations)
        if task.overlay:
            from models.matcher.overlay import draw_overlay
            from shared.overlay import save_png

            save_png(task.overlay, draw_overlay(image, result))
        if task.details:
            _write_details(task.details, task.key, annotation, result)
        prob = quantize(result.prob) if task.want_prob else None
        return Outcome(task.key, annotation, result.features, prob, None, time.perf_counter() - start, extra)
    except Exception as exc:  # a broken image must never sink a run
        prob = None
        if task.want_prob:
            try:
                prob = np.zeros(read_size(task.path), np.uint8)
            except OSError:
                prob = None
        error = f"{task.path}: {exc}" if str(task.path) not in str(exc) else str(exc)
        extra = {"cpu_seconds": time.process_time() - cpu_start, "megapixels": 0.0}
        return Outcome(task.key, AUTHENTIC, empty_features(), prob, error, time.perf_counter() - start, extra)


def _write_details(path: str, key: str, annotation: str, result: MatchResult) -> None:
    operations = []
    for k, mask in enumerate(result.operations):
        ys, xs = np.nonzero(mask)
        operations.append(
            {
                "operation": k + 1,
                "area_share": float(mask.mean()),
                "box_yxyx": [int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1],
                "links": [
                    {
                        "source_xy": [round(v, 1) for v in link.source],
                        "copy_xy": [round(v, 1) for v in link.copy],
                        "transform": link.transform,
                        "confidence": round(link.confidence, 3),
                        "found_by": link.origin,
                    }
                    for link in result.links
                    if link.operation == k
                ],
            }
        )
    summary = {"id": key, "verdict": "forged" if operations else "authentic", "operations": operations}
    summary["candidates"] = [asdict(verdict) for verdict in result.candidates]  # why each was kept or not
    summary["features"] = result.features
    summary["annotation"] = annotation
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(summary, indent=2) + "\n")


_WORKER_PARAMS: MatcherParams | None = None


def _init_worker(params: dict[str, Any]) -> None:
    global _WORKER_PARAMS
    _single_thread()
    _WORKER_PARAMS = MatcherParams.from_dict(params)


def _work(task: Task) -> Outcome:
    assert _WORKER_PARAMS is not None
    return run_task(task, _WORKER_PARAMS)


def _single_thread() -> None:
    cv2.setNumThreads(1)
    threadpool_limits(1)


def run_tasks(
    tasks: Iterable[Task], params: MatcherParams | dict[str, Any], jobs: int, desc: str = "match"
) -> Iterator[Outcome]:
    """Outcomes in task order, with a progress bar; failures are logged as warnings."""
    p = MatcherParams.coerce(params)
    tasks = list(tasks)
    jobs = max(1, min(jobs, len(tasks)))
    bar = tqdm(total=len(tasks), desc=desc, unit="img", disable=None)
    try:
        if jobs == 1:
            cv2_threads = cv2.getNumThreads()
            cv2.setNumThreads(1)
            try:
                with threadpool_limits(1):
                    for task in tasks:
                        yield _report(run_task(task, p), bar)
            finally:
                cv2.setNumThreads(cv2_threads)
        else:
            context = multiprocessing.get_context("spawn")
            with context.Pool(jobs, initializer=_init_worker, initargs=(p.to_dict(),)) as pool:
                for outcome in pool.imap(_work, tasks, chunksize=1):
                    yield _report(outcome, bar)
    finally:
        bar.close()


def _report(outcome: Outcome, bar: tqdm) -> Outcome:
    if outcome.error:
        log.warning("%s: written as authentic (%s)", outcome.key, outcome.error)
    bar.update(1)
    return outcome

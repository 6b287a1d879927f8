"""Full-stack prediction: segmenters (with TTA) + matcher → features → P(forged) → fusion → instances.

An image that cannot be read or processed becomes ``authentic`` with a logged warning, and the run
continues; the submission is rewritten atomically every few images so an interrupted run still leaves a
valid file. Worker processes, per-figure time limits and resuming live in ``ensemble.parallel`` and
``ensemble.progress``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
from tqdm import tqdm

from ensemble.bundle import Bundle
from ensemble.cached_maps import CachedMaps
from ensemble.features import all_features
from ensemble.fusion import FusionConfig, emits_operations, final_instances
from ensemble.guard import TimeGuard
from ensemble.meta_model import MetaModel
from ensemble.parallel import FigureRunner, SerialRunner
from ensemble.progress import ProgressLog
from ensemble.worksize import grow_mask, shrink_image, shrink_map, shrink_mask, work_shape
from shared.evidence import EvidenceSpec, compute_evidence
from shared.images import load_image
from shared.maps import as_stored
from shared.rle import AUTHENTIC, format_annotation
from shared.submission import image_ids, ordered_ids, write_submission

log = logging.getLogger(__name__)


@dataclass
class ComponentOutput:
    """What one component says about one image, at native size."""

    prob: np.ndarray
    operations: list[np.ndarray] = field(default_factory=list)
    features: dict[str, float] = field(default_factory=dict)


Evidence = dict[EvidenceSpec, np.ndarray]
"""The repetition evidence of one image, per evidence spec (computed once, shared by every segmenter)."""


class Runner(Protocol):
    name: str

    def run(self, image: np.ndarray, evidence: Evidence | None = None) -> ComponentOutput: ...


class SegmenterRunner:
    """All fold checkpoints of one segmenter, averaged, with the TTA their OOF maps were made with."""

    def __init__(self, name: str, checkpoints: Sequence[Path], device: str, tta: bool):
        from models.segmenter.infer import load_predictor  # imported here: only prediction needs torch

        self.name, self.device = name, device
        self.full = self.predictor = load_predictor(list(checkpoints), device=device, tta=tta)

    def set_level(self, level: int) -> None:
        """Level 0: every fold model with TTA; 1: no TTA; 2 and above: the first fold model, no TTA."""
        from models.segmenter.infer import Predictor

        if level == 0:
            self.predictor = self.full
        else:
            members = self.full.members if level == 1 else self.full.members[:1]
            self.predictor = Predictor(members, self.device, "none")

    @property
    def evidence_specs(self) -> list[EvidenceSpec]:
        return self.full.evidence_specs

    def run(self, image: np.ndarray, evidence: Evidence | None = None) -> ComponentOutput:
        specs = self.predictor.evidence_specs
        shared = evidence.get(specs[0]) if evidence is not None and len(specs) == 1 else None
        return ComponentOutput(self.predictor.predict(image, shared))


class MatcherRunner:
    """The classical copy-move matcher."""

    name = "matcher"

    def __init__(self, params):  # MatcherParams
        self.params = params

    def run(self, image: np.ndarray, evidence: Evidence | None = None) -> ComponentOutput:
        from models.matcher import match_image, prefixed_features

        result = match_image(image, self.params)
        return ComponentOutput(result.prob, list(result.operations), prefixed_features(result.features))


def make_runners(bundle: Bundle, device: str = "cpu", tta: bool = True) -> list[Runner]:
    """One runner per component of the bundle, in the bundle's order."""
    runners: list[Runner] = []
    for name in bundle.components:
        if name == "matcher":
            if bundle.matcher_params is None:
                raise FileNotFoundError(f"{bundle.folder}: matcher.json missing for component 'matcher'")
            runners.append(MatcherRunner(bundle.checked_matcher_params()))
        else:
            runners.append(SegmenterRunner(name, bundle.segmenters[name], device, tta))
    return runners


class Stack:
    """The fitted ensemble: component runners, meta-classifier and fusion config.

    Cost levels for a time guard: 0 everything, 1 no TTA, 2 one fold model per segmenter,
    3 the matcher's own operations alone (no segmenters, no meta-classifier).
    """

    n_levels = 4

    def __init__(
        self,
        runners: Sequence[Runner],
        meta: MetaModel,
        fusion: FusionConfig,
        cached: dict[str, CachedMaps] | None = None,
    ):
        self.runners, self.meta, self.fusion = list(runners), meta, fusion
        self.cached = dict(cached or {})  # component name -> its precomputed test maps (ensemble.cached_maps)
        self.level = 0

    def set_level(self, level: int) -> None:
        """Trade accuracy for speed (see the class docstring); runners adapt where they can."""
        self.level = level
        for runner in self.runners:
            if hasattr(runner, "set_level"):
                runner.set_level(level)

    def evidence(self, image: np.ndarray) -> Evidence:
        """The evidence every segmenter reads, computed once per figure (not per segmenter or fold model)."""
        specs = dict.fromkeys(spec for r in self.runners for spec in getattr(r, "evidence_specs", []))
        return {spec: compute_evidence(image, spec) for spec in specs}

    @classmethod
    def from_bundle(
        cls, folder: str | Path, device: str = "cpu", tta: bool = True, maps_dir: str | Path | None = None
    ) -> Stack:
        """The bundle's stack; ``maps_dir``: precomputed segmenter test maps to reuse where they fit the bundle."""
        bundle = Bundle.open(folder)
        runners = make_runners(bundle, device, tta)
        cached = {}
        if maps_dir is not None:
            for runner in runners:
                if isinstance(runner, SegmenterRunner):
                    found = CachedMaps.open(maps_dir, runner.name, bundle.segmenters[runner.name], runner.full.tta)
                    if found is not None:
                        cached[runner.name] = found
        return cls(runners, MetaModel.load(folder), FusionConfig.load(bundle.fusion_path), cached)

    def predict(self, image: np.ndarray, case_id: str | None = None) -> tuple[list[np.ndarray], float]:
        """Native-size instance masks (empty = authentic) and P(forged) for one RGB image.

        ``case_id``: the image's id, to look up precomputed maps (``self.cached``). Every component map is
        quantised as map files store it (``as_stored``), so tuning, cached and computed maps agree.
        """
        native = image.shape[:2]
        if self.level >= 3:
            matcher = next((r for r in self.runners if r.name == "matcher"), None)
            if matcher is not None:
                operations = matcher.run(image).operations
                return list(operations), float(bool(operations))
        shape = work_shape(*native, self.fusion.work_size)
        small = shrink_image(image, shape)
        maps, operations, passthrough = {}, [], {}
        native_operations: list[np.ndarray] = []
        evidence: Evidence | None = None
        for runner in self.runners:
            cache = self.cached.get(runner.name)
            stored = cache.get(case_id, native) if cache is not None and case_id is not None else None
            if stored is not None:
                output = ComponentOutput(stored)
            else:
                if evidence is None and getattr(runner, "evidence_specs", None):
                    evidence = self.evidence(image)  # once per figure, only if a component that reads it runs
                output = runner.run(image, evidence)
            maps[runner.name] = shrink_map(as_stored(output.prob), shape)
            passthrough.update(output.features)
            if runner.name == self.fusion.operations_from:
                native_operations = [op.astype(bool) for op in output.operations if op.any()]
                operations = [shrink_mask(op, shape) for op in native_operations]
        features = pd.DataFrame([all_features(small, native, maps, passthrough)])
        p_forged = float(self.meta.predict(features)[0])
        instances = final_instances(self.fusion, p_forged, maps, small, operations)
        if instances and emits_operations(self.fusion, operations):
            return native_operations, p_forged
        return [grow_mask(m, native) for m in instances], p_forged

    def annotate(self, path: str | Path) -> str:
        """The submission cell for one image file."""
        masks, _ = self.predict(load_image(path), Path(path).stem)
        return format_annotation(masks)


def predict_folder(
    annotate: Callable[[Path], str] | FigureRunner,
    images: str | Path,
    out: str | Path,
    sample_submission: str | Path | None = None,
    checkpoint_every: int = 25,
    time_budget_s: float | None = None,
    guard: TimeGuard | None = None,
    resume: bool = False,
) -> dict[str, str]:
    """Annotate every image in ``images`` and write ``out`` in sample-submission order.

    ``annotate`` is a function (run here, one image after the other) or a runner such as
    :class:`ensemble.parallel.FigurePool` (worker processes, per-figure time limit). Failures become
    ``authentic`` (logged with the file and reason); ``out`` is rewritten atomically every
    ``checkpoint_every`` images, and once ``time_budget_s`` is spent the remaining rows stay
    ``authentic`` so a valid file always exists. Every finished row is also appended to the progress
    log ``<out>.progress`` (``ensemble.progress``); ``resume=True`` keeps the rows it lists and predicts
    only the others. ``guard`` (a :class:`TimeGuard`) picks the cost level of each image.
    """
    runner = annotate if hasattr(annotate, "run") else SerialRunner(annotate)
    paths = image_ids(images)
    if sample_submission is None:
        candidate = Path(images).parent / "sample_submission.csv"
        sample_submission = candidate if candidate.is_file() else None
    order = ordered_ids(images, sample_submission)
    missing = [i for i in order if i not in paths]
    for case_id in missing:
        log.warning("%s: no image for case_id %s; writing authentic", images, case_id)
    progress = ProgressLog(out)
    annotations: dict[str, str] = progress.read(order) if resume else {}
    if resume:
        log.info("resume: %d of %d rows already done in %s", len(annotations), len(order), progress.path)
    write_submission(annotations, order, out)
    todo = [i for i in order if i in paths and i not in annotations]
    if guard is not None:
        guard.expect(len(todo))
    start = time.monotonic()

    def tasks() -> Iterator[tuple[str, Path]]:
        for n, case_id in enumerate(todo):
            if time_budget_s is not None and time.monotonic() - start > time_budget_s:
                spent = "time budget of %.0f s spent after %d/%d images; the rest stay authentic"
                log.warning(spent, time_budget_s, n, len(todo))
                return
            yield case_id, paths[case_id]

    progress.start(resume)
    try:
        level = guard.next_level if guard is not None else (lambda: 0)
        outcomes = runner.run(tasks(), level)
        for n, outcome in enumerate(tqdm(outcomes, total=len(todo), desc="predict", disable=None), start=1):
            if guard is not None:
                guard.finished()
            annotation = outcome.annotation
            if annotation is None:
                log.warning("%s: prediction failed, writing authentic (%s)", paths[outcome.key], outcome.problem)
                annotation = AUTHENTIC
            annotations[outcome.key] = annotation
            progress.add(outcome.key, annotation, outcome.problem)
            if n % checkpoint_every == 0:
                write_submission(annotations, order, out)
    finally:
        progress.close()
        write_submission(annotations, order, out)
    forged = sum(a != AUTHENTIC for a in annotations.values())
    log.info("wrote %s: %d rows, %d predicted forged", out, len(order), forged)
    return annotations

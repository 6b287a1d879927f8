"""The fusion rule, as data: weighted map average, pixel threshold, minimum region area, decision rule.

Instances come from one of three sources (``FusionConfig.instances_from``): regions of the fused map
("maps"), the operations component's own instances ("operations"), or the operations where that
component found any and the fused map's regions elsewhere ("operations_or_maps": the matcher's
pixel-exact operations are kept, the segmenters fill in only where it found nothing). In the last
source each kind has its own P(forged) threshold, since the meta-classifier's confidence means
something different for a figure with a verified copy than for one with only a map.

``FusionConfig`` is written by tuning (``artifacts/ensemble/fusion/fusion.json``) and read by prediction, so
the numbers the report shows are the numbers prediction uses.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ensemble.instances import build_instances

INSTANCE_SOURCES = ("maps", "operations", "operations_or_maps")


@dataclass
class FusionConfig:
    """Everything tuned on OOF that turns component maps and P(forged) into instances."""

    weights: dict[str, float]
    threshold: float = 0.5
    min_area_frac: float = 0.001
    p_threshold: float = 0.5
    link_ncc: float = 0.8
    work_size: int = 512
    operations_from: str | None = "matcher"
    instances_from: str = "maps"  # one of INSTANCE_SOURCES (see the module docstring)
    p_threshold_operations: float = 0.0  # "operations_or_maps": P(forged) needed to keep the operations
    tuned_on: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.instances_from not in INSTANCE_SOURCES:
            raise ValueError(f"fusion: instances_from must be one of {INSTANCE_SOURCES}, got {self.instances_from!r}")

    def save(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> FusionConfig:
        try:
            return cls(**json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError, TypeError) as exc:
            raise ValueError(f"{path}: not a valid fusion config ({exc})") from exc

    @property
    def components(self) -> list[str]:
        return sorted(self.weights)


def fuse(maps: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    """Weighted mean of the component maps (weights need not sum to 1; zero weights are skipped)."""
    used = [(maps[name], w) for name, w in sorted(weights.items()) if w > 0]
    if not used:
        raise ValueError("fusion weights are all zero")
    total = sum(w for _, w in used)
    fused = np.zeros_like(next(iter(used))[0], dtype=np.float32)
    for prob, w in used:
        fused += (w / total) * prob
    return fused


def fused_instances(
    config: FusionConfig, maps: Mapping[str, np.ndarray], image: np.ndarray, operations: Sequence[np.ndarray] = ()
) -> list[np.ndarray]:
    """Work-size instances, before the authentic/forged decision: regions of the fused map grouped by
    ``operations``, or those operations themselves (``instances_from``: "operations", or
    "operations_or_maps" when there are any)."""
    if config.instances_from != "maps":
        own = [op.astype(bool) for op in operations if op.any()]
        if config.instances_from == "operations" or own:
            return own
    return build_instances(
        fuse(maps, config.weights), image, config.threshold, config.min_area_frac, operations, config.link_ncc
    )


def uses_operations(config: FusionConfig, operations: Sequence[np.ndarray]) -> bool:
    """Whether this figure's instances are the operations component's own, judged by
    ``p_threshold_operations`` (only in "operations_or_maps", where some operation is non-empty)."""
    return config.instances_from == "operations_or_maps" and any(op.any() for op in operations)


def emits_operations(config: FusionConfig, operations: Sequence[np.ndarray]) -> bool:
    """Whether this figure's instances, if emitted, are the operations component's own: then they are
    emitted at native size as that component gave them, not through the work size (pixel-exact copies
    stay pixel-exact; a tiny copy in a large figure would otherwise come back a blocky blob)."""
    return config.instances_from == "operations" or uses_operations(config, operations)


def decide(
    config: FusionConfig, p_forged: float, instances: list[np.ndarray], via_operations: bool = False
) -> list[np.ndarray]:
    """Apply the image-level decision: no instances unless P(forged) clears the tuned threshold
    (``p_threshold_operations`` for instances that are the operations component's own)."""
    threshold = config.p_threshold_operations if via_operations else config.p_threshold
    return instances if p_forged >= threshold else []


def final_instances(
    config: FusionConfig,
    p_forged: float,
    maps: Mapping[str, np.ndarray],
    image: np.ndarray,
    operations: Sequence[np.ndarray] = (),
) -> list[np.ndarray]:
    """Work-size instances after the authentic/forged decision: what prediction and the report emit."""
    instances = fused_instances(config, maps, image, operations)
    return decide(config, p_forged, instances, uses_operations(config, operations))


def expected_score_threshold(q: float) -> float:
    """P(forged) above which predicting masks beats ``authentic`` when a forged row scores ``q``."""
    return 1.0 / (1.0 + max(q, 1e-6))

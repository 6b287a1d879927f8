"""The ``segmenter:`` section of params.yaml, resolved for the active ``profile`` (demo or full).

Each entry of ``segmenter.models`` names its components (smp ``arch``, timm ``encoder``, optional
``corr`` block, ``input`` policy, ``loss``) plus training settings; its ``demo:`` / ``full:`` blocks
override any of those keys for that profile. Unknown keys are errors (typos never pass silently).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields
from typing import Any

from models.segmenter.spec import CorrSpec, InputPolicy, ModelSpec
from shared.config import load_params
from shared.evidence import EvidenceSpec

PROFILES = ("demo", "full")
SPEC_KEYS = {"arch", "encoder", "decoder", "corr", "input", "evidence"}


@dataclass(frozen=True)
class TrainConfig:
    """Training settings of one model entry (after the profile override)."""

    epochs: int
    lr: float
    batch_size: int
    loss: dict[str, float] = field(default_factory=lambda: {"bce": 1.0, "dice": 1.0})
    weight_decay: float = 1e-4
    global_p: float = 0.5
    positive_crop_p: float = 0.5
    patience: int = 3
    warmup: float = 0.1
    select: str = "best"  # best: the epoch with the best validation oF1 (scored every epoch); last: the final epoch
    pretrained: str | None = None
    num_workers: int = 0
    max_train_images: int | None = None


def _deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def profile_name(params: dict[str, Any]) -> str:
    name = params.get("profile", "demo")
    if name not in PROFILES:
        raise ValueError(f"params.yaml: profile must be one of {PROFILES}, got {name!r}")
    return name


def section(params: dict[str, Any] | None = None) -> dict[str, Any]:
    params = load_params() if params is None else params
    if "segmenter" not in params:
        raise KeyError("params.yaml: no 'segmenter' section")
    return params["segmenter"]


def by_profile(value: Any, params: dict[str, Any]) -> Any:
    """A shared setting that may be given per profile (``{demo: ..., full: ...}``) or once for both."""
    if isinstance(value, dict) and set(value) <= set(PROFILES) and value:
        return value[profile_name(params)]
    return value


def tta_set(params: dict[str, Any] | None = None) -> str:
    """``segmenter.tta`` for the active profile."""
    params = load_params() if params is None else params
    return by_profile(section(params)["tta"], params)


def active_models(params: dict[str, Any] | None = None) -> list[str]:
    return list(section(params)["active"])


def model_entry(name: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The model entry with its profile block merged in (profile blocks removed)."""
    params = load_params() if params is None else params
    models = section(params)["models"]
    if name not in models:
        raise KeyError(f"params.yaml: no segmenter model {name!r} (have: {', '.join(models)})")
    entry = models[name]
    merged = _deep_merge({k: v for k, v in entry.items() if k not in PROFILES}, entry.get(profile_name(params)) or {})
    if merged.get("evidence"):  # `evidence: true` = the evidence channels of params.yaml's `evidence.spec`
        merged["evidence"] = dict((params.get("evidence") or {}).get("spec") or {})
    else:
        merged.pop("evidence", None)
    known = SPEC_KEYS | {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(merged) - known)
    if unknown:
        raise KeyError(f"params.yaml: segmenter.models.{name}: unknown key(s) {unknown} (known: {sorted(known)})")
    return merged


def model_spec(name: str, entry: dict[str, Any]) -> ModelSpec:
    corr = entry.get("corr")
    return ModelSpec(
        name=name,
        arch=entry["arch"],
        encoder=entry["encoder"],
        decoder=dict(entry.get("decoder") or {}),
        corr=CorrSpec(**corr) if corr else None,
        policy=InputPolicy(**(entry.get("input") or {})),
        evidence=EvidenceSpec.from_dict(entry["evidence"]) if entry.get("evidence") is not None else None,
    )


SELECT_RULES = ("best", "last")


def train_config(entry: dict[str, Any]) -> TrainConfig:
    cfg = TrainConfig(**{k: v for k, v in entry.items() if k not in SPEC_KEYS})
    if cfg.select not in SELECT_RULES:
        raise ValueError(f"params.yaml: segmenter select must be one of {SELECT_RULES}, got {cfg.select!r}")
    return cfg

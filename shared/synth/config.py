"""Generator settings: the ``synth`` section of params.yaml resolved for one profile, and per-case RNGs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shared.config import load_params

SPLIT_CODES = {"train": 0, "supplemental": 1, "test": 2}


@dataclass(frozen=True)
class SynthConfig:
    """Everything the generator reads; sizes come from the profile block, the rest is shared."""

    seed: int
    n_train: int
    n_supplemental: int
    n_test: int
    min_side: int
    max_side: int
    workers: int
    compound_frac: dict[str, float]
    test_forged_frac: float
    families: dict[str, float]
    blocks: dict[str, float]
    regions: dict[str, float]
    transforms: dict[str, float]
    photometric_prob: float
    ops_weights: list[float]
    copies_weights: list[float]
    area_frac: tuple[float, float]
    same_panel_prob: float
    min_source_std: float
    min_visible_change: float
    jpeg: dict[str, Any]
    modes: dict[str, float]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_images(self) -> int:
        return 2 * self.n_train + self.n_supplemental + self.n_test


def load_config(profile: str | None = None, params: dict[str, Any] | None = None, **overrides: Any) -> SynthConfig:
    """Resolve ``synth`` for ``profile`` (default: the ``profile`` key of params.yaml).

    The result merges ``synth.seed``, ``synth.generator`` and ``synth.<profile>`` (sizes, workers).

    ``overrides`` replace single fields (e.g. ``n_train=10``), as the command line does.
    """
    params = params if params is not None else load_params()
    if "synth" not in params:
        raise KeyError("params.yaml has no 'synth' section")
    section = params["synth"]
    profile = profile or params.get("profile", "demo")
    if profile not in section:
        raise KeyError(f"params.yaml: synth has no profile {profile!r} (known: demo, full)")
    merged = {"seed": section["seed"], **section["generator"], **section[profile]}
    merged["area_frac"] = tuple(merged["area_frac"])
    known = set(SynthConfig.__dataclass_fields__) - {"extra"}
    extra = {k: v for k, v in merged.items() if k not in known}
    config = SynthConfig(**{k: v for k, v in merged.items() if k in known}, extra=extra)
    for key, value in overrides.items():
        if value is not None:
            config = _replace(config, key, value)
    _check(config)
    return config


def _replace(config: SynthConfig, key: str, value: Any) -> SynthConfig:
    from dataclasses import replace

    if key not in SynthConfig.__dataclass_fields__:
        raise KeyError(f"unknown synth setting {key!r}")
    return replace(config, **{key: value})


def _check(config: SynthConfig) -> None:
    if not 16 <= config.min_side <= config.max_side:
        raise ValueError(f"synth: need 16 <= min_side <= max_side, got {config.min_side}, {config.max_side}")
    if min(config.n_train, config.n_supplemental, config.n_test) < 0:
        raise ValueError("synth: case counts must be >= 0")
    lo, hi = config.area_frac
    if not 0 < lo < hi < 0.5:
        raise ValueError(f"synth: area_frac must satisfy 0 < lo < hi < 0.5, got {config.area_frac}")


def case_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The RNG of one case: a function of (seed, split, index) only, so order and parallelism never matter."""
    return np.random.default_rng(np.random.SeedSequence(entropy=int(seed), spawn_key=(SPLIT_CODES[split], int(index))))


def pick(rng: np.random.Generator, weights: dict[str, float]) -> str:
    """One key drawn with probability proportional to its weight."""
    keys = list(weights)
    p = np.asarray([weights[k] for k in keys], dtype=np.float64)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def scaled_counts(config: SynthConfig, n_train: int) -> SynthConfig:
    """``n_train`` train cases, supplemental and test counts scaled by the profile's ratios (at least 1 each)."""
    from dataclasses import replace

    if n_train < 1:
        raise ValueError(f"--n must be >= 1, got {n_train}")
    ratio = n_train / max(config.n_train, 1)
    return replace(
        config,
        n_train=n_train,
        n_supplemental=max(1, round(config.n_supplemental * ratio)) if config.n_supplemental else 0,
        n_test=max(1, round(config.n_test * ratio)) if config.n_test else 0,
    )

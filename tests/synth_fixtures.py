"""The real synth config from params.yaml, shrunk for tests (fewer cases, smaller figures)."""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

from shared.synth.case import Case, make_case
from shared.synth.config import SynthConfig, load_config


def small_config(n_train: int = 6, n_supplemental: int = 2, n_test: int = 8, max_side: int = 700) -> SynthConfig:
    return replace(
        load_config("demo"), n_train=n_train, n_supplemental=n_supplemental, n_test=n_test, max_side=max_side
    )


@lru_cache(maxsize=1)
def sample_cases() -> tuple[Case, ...]:
    """A spread of in-memory cases from every split (computed once per test session)."""
    config = small_config()
    cases = [make_case(config, "train", i) for i in range(24)]
    cases += [make_case(config, "test", i) for i in range(24)]
    cases += [make_case(config, "supplemental", i) for i in range(6)]
    return tuple(cases)

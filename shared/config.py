"""Access to ``params.yaml``, the single home of every hyper-parameter and default path."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
PARAMS_ENV = "RECODAI_PARAMS"


def params_path() -> Path:
    """``$RECODAI_PARAMS`` if set, else ``params.yaml`` in the working directory, else the repo's."""
    if PARAMS_ENV in os.environ:
        return Path(os.environ[PARAMS_ENV])
    local = Path("params.yaml")
    return local if local.is_file() else REPO_ROOT / "params.yaml"


@lru_cache(maxsize=8)
def _load(path: str) -> dict[str, Any]:
    with open(path) as handle:
        return yaml.safe_load(handle) or {}


def load_params(path: str | Path | None = None) -> dict[str, Any]:
    """The whole parameter tree (cached per path; treat it as read-only)."""
    return _load(str(path or params_path()))


def param(dotted: str, path: str | Path | None = None) -> Any:
    """One value by dotted key, e.g. ``param("folds.n_splits")``; a missing key names itself."""
    node: Any = load_params(path)
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            raise KeyError(f"{params_path() if path is None else path}: no parameter {dotted!r}")
        node = node[key]
    return node


def data_root(override: str | Path | None = None) -> Path:
    """The data root: the command-line override if given, else ``data.root`` from params.yaml."""
    return Path(override) if override else Path(param("data.root"))

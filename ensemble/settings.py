"""The ensemble's parameters from params.yaml, with the component list derived from the models'."""

from __future__ import annotations

from typing import Any

from shared.config import load_params


def ensemble_params() -> dict[str, Any]:
    """The ``ensemble`` section of params.yaml."""
    return load_params()["ensemble"]


def components_from_params() -> list[str]:
    """Components whose OOF outputs are stacked: ``ensemble.components``, or the matcher plus
    every active segmenter when that is ``auto``."""
    params = load_params()
    listed = params["ensemble"].get("components", "auto")
    if listed != "auto":
        return list(listed)
    names = ["matcher"] if "matcher" in params else []
    return names + list(params.get("segmenter", {}).get("active", []))

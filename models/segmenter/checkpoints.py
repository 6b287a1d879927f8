"""Self-describing checkpoints: the network's weights plus its spec, fold, epoch and validation score.

File names say what they hold: ``<model>__<encoder>__fold<k>__ep<EEE>__of1-<score>.pt`` (``foldall``
for a fit on every labelled image). Loading needs only the file (``weights_only=True``: plain data
and tensors, no pickled code).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from models.segmenter.spec import ModelSpec

FORMAT = "recodai-segmenter/1"
NAME_PATTERN = re.compile(
    r"^(?P<model>.+)__(?P<encoder>.+)__fold(?P<fold>\d+|all)__ep(?P<epoch>\d+)__of1-(?P<score>[\d.]+|na)\.pt$"
)


@dataclass
class Checkpoint:
    """A loaded checkpoint: spec, weights and what the training recorded."""

    path: Path
    spec: ModelSpec
    state_dict: dict[str, torch.Tensor]
    meta: dict[str, Any]


def fold_label(fold: int) -> str:
    return "all" if fold < 0 else str(fold)


def checkpoint_name(spec: ModelSpec, fold: int, epoch: int, score: float | None) -> str:
    """Descriptive file name; ``score`` is the validation oF1 (None when nothing was held out)."""
    encoder = spec.encoder.replace("/", "-")
    shown = "na" if score is None else f"{score:.4f}"
    return f"{spec.name}__{encoder}__fold{fold_label(fold)}__ep{epoch:03d}__of1-{shown}.pt"


def save_checkpoint(
    folder: str | Path, spec: ModelSpec, network: nn.Module, fold: int, epoch: int, score: float | None, meta: dict
) -> Path:
    """Write the checkpoint under its descriptive name (replacing older ones of this model and fold)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / checkpoint_name(spec, fold, epoch, score)
    payload = {
        "format": FORMAT,
        "spec": spec.to_dict(),
        "fold": fold,
        "epoch": epoch,
        "score": score,
        "meta": meta,
        "state_dict": {k: v.detach().cpu() for k, v in network.state_dict().items()},
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    for old in folder.glob(f"{spec.name}__*__fold{fold_label(fold)}__*.pt"):
        old.unlink()
    tmp.replace(path)
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path}: not a readable checkpoint ({exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not a segmenter checkpoint (expected format {FORMAT!r})")
    meta = {k: payload[k] for k in ("fold", "epoch", "score")} | dict(payload.get("meta") or {})
    return Checkpoint(path, ModelSpec.from_dict(payload["spec"]), payload["state_dict"], meta)


def find_checkpoints(folder: str | Path) -> list[Path]:
    """Every checkpoint under ``folder`` (recursively), sorted; resume states are not included."""
    return sorted(p for p in Path(folder).rglob("*.pt") if NAME_PATTERN.match(p.name))

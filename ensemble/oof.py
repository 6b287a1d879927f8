"""Load every labelled image's out-of-fold component outputs at the ensemble's working size.

Components follow the contract in docs/ARCHITECTURE.md: ``artifacts/oof/<component>/`` holds map
files covering every labelled uid exactly once, optionally ``features.csv`` (passed through to the
meta-classifier) and ``instances.csv`` (operations, used to group regions).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from ensemble.worksize import shrink_image, shrink_map, shrink_mask, work_shape
from shared.dataset import discover, true_masks
from shared.folds import read_folds
from shared.images import load_image
from shared.maps import MapSet
from shared.rle import decode_instances


@dataclass
class Sample:
    """One labelled image at working size, with everything the ensemble needs."""

    uid: str
    case_id: str
    label: str
    fold: int
    native_shape: tuple[int, int]
    image: np.ndarray
    truth: list[np.ndarray]
    maps: dict[str, np.ndarray]
    operations: list[np.ndarray] = field(default_factory=list)
    passthrough: dict[str, float] = field(default_factory=dict)
    mask_path: str = ""
    image_path: str = ""

    @property
    def forged(self) -> bool:
        return self.label == "forged"


@dataclass
class Component:
    """One component's OOF outputs on disk."""

    name: str
    maps: MapSet
    features: pd.DataFrame | None
    instances: dict[str, str]

    @classmethod
    def open(cls, folder: Path) -> Component:
        files = sorted(folder.glob("*.npz"))
        if not files:
            raise FileNotFoundError(f"{folder}: no map files (*.npz); has this component's stage run?")
        features_path, instances_path = folder / "features.csv", folder / "instances.csv"
        features = pd.read_csv(features_path, dtype={"uid": str}).set_index("uid") if features_path.is_file() else None
        instances = {}
        if instances_path.is_file():
            table = pd.read_csv(instances_path, dtype=str, keep_default_na=False)
            instances = dict(zip(table["uid"], table["annotation"], strict=True))
        return cls(folder.name, MapSet(files), features, instances)


def load_samples(
    root: str | Path,
    folds_csv: str | Path,
    oof_dir: str | Path,
    components: Sequence[str],
    work_size: int,
    operations_from: str | None = "matcher",
) -> list[Sample]:
    """Every labelled image with its fold, work-size image, truth, component maps and operations."""
    table = discover(root).set_index("uid")
    folds = read_folds(folds_csv)
    opened = [Component.open(Path(oof_dir) / name) for name in components]
    for component in opened:
        component.maps.check_alignment(folds["uid"])
    samples = []
    for row in tqdm(folds.itertuples(index=False), total=len(folds), desc="load OOF", disable=None):
        info = table.loc[row.uid]
        native = (int(info["height"]), int(info["width"]))
        shape = work_shape(*native, work_size)
        maps = {c.name: shrink_map(c.maps[row.uid], shape) for c in opened}
        passthrough: dict[str, float] = {}
        operations: list[np.ndarray] = []
        for component in opened:
            if component.features is not None and row.uid in component.features.index:
                passthrough.update(component.features.loc[row.uid].astype(float).to_dict())
            if component.name == operations_from and row.uid in component.instances:
                operations = [shrink_mask(m, shape) for m in decode_instances(component.instances[row.uid], native)]
        truth = [shrink_mask(m, shape) for m in true_masks(info)] if row.label == "forged" else []
        samples.append(
            Sample(
                uid=row.uid,
                case_id=str(row.case_id),
                label=str(row.label),
                fold=int(row.fold),
                native_shape=native,
                image=shrink_image(load_image(info["image_path"]), shape),
                truth=truth,
                maps=maps,
                operations=operations,
                passthrough=passthrough,
                mask_path=str(info["mask_path"]),
                image_path=str(info["image_path"]),
            )
        )
    return samples

"""Storage of probability maps: one compressed file per (model, fold), uint8-quantised, with an index.

``<stem>.npz`` holds one ``uint8`` array (probability x 255, rounded) per image under a short key;
``<stem>.index.csv`` maps ``uid`` to that key and the map's ``height, width``. Maps are written
streaming (one image at a time) and read lazily, so memory stays bounded on real data.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

INDEX_COLUMNS = ["uid", "key", "height", "width"]


def as_stored(prob: np.ndarray) -> np.ndarray:
    """Float32 probabilities exactly as a map file returns them (quantised to 1/255): what tuning saw."""
    return dequantize(quantize(prob))


def quantize(prob: np.ndarray) -> np.ndarray:
    """Probabilities in [0, 1] (float) to uint8; uint8 input passes through."""
    if prob.dtype == np.uint8:
        return prob
    return np.round(np.clip(prob, 0.0, 1.0) * 255.0).astype(np.uint8)


def dequantize(values: np.ndarray) -> np.ndarray:
    """uint8 map back to float32 probabilities."""
    return values.astype(np.float32) / 255.0


def index_path(npz_path: str | Path) -> Path:
    path = Path(npz_path)
    return path.with_name(path.name.removesuffix(".npz") + ".index.csv")


class MapWriter:
    """Write maps one at a time: ``with MapWriter(path) as w: w.add(uid, prob)``."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if self.path.suffix != ".npz":
            raise ValueError(f"{self.path}: map files end in .npz")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(self.path.name + ".tmp")
        self._zip = zipfile.ZipFile(self._tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6)
        self._rows: list[dict] = []
        self._seen: set[str] = set()

    def add(self, uid: str, prob: np.ndarray) -> None:
        """Store the ``(H, W)`` probability map of one image (or ``(H, W, C)`` maps, e.g. evidence channels)."""
        if uid in self._seen:
            raise ValueError(f"{self.path}: map for {uid!r} written twice")
        if prob.ndim not in (2, 3):
            raise ValueError(f"{self.path}: map for {uid!r} must be (H, W) or (H, W, C), got {prob.shape}")
        key = f"m{len(self._rows):06d}"
        with self._zip.open(f"{key}.npy", "w", force_zip64=True) as handle:
            np.lib.format.write_array(handle, np.ascontiguousarray(quantize(prob)), allow_pickle=False)
        self._rows.append({"uid": uid, "key": key, "height": prob.shape[0], "width": prob.shape[1]})
        self._seen.add(uid)

    def close(self) -> None:
        self._zip.close()
        self._tmp.replace(self.path)
        pd.DataFrame(self._rows, columns=INDEX_COLUMNS).to_csv(index_path(self.path), index=False)

    def __enter__(self) -> MapWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self._zip.close()
            self._tmp.unlink(missing_ok=True)


class MapReader:
    """Lazy access to a map file: ``reader[uid]`` gives float32 probabilities."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file() or not index_path(self.path).is_file():
            raise FileNotFoundError(f"{self.path}: map file or its index {index_path(self.path).name} is missing")
        self.index = pd.read_csv(index_path(self.path), dtype={"uid": str, "key": str})
        if self.index["uid"].duplicated().any():
            raise ValueError(f"{index_path(self.path)}: duplicated uids")
        self._keys = dict(zip(self.index["uid"], self.index["key"], strict=True))
        self._npz = np.load(self.path, allow_pickle=False)

    @property
    def uids(self) -> list[str]:
        return self.index["uid"].tolist()

    def __contains__(self, uid: str) -> bool:
        return uid in self._keys

    def raw(self, uid: str) -> np.ndarray:
        """The stored uint8 map."""
        if uid not in self._keys:
            raise KeyError(f"{self.path}: no map for {uid!r}")
        return self._npz[self._keys[uid]]

    def __getitem__(self, uid: str) -> np.ndarray:
        return dequantize(self.raw(uid))

    def items(self) -> Iterator[tuple[str, np.ndarray]]:
        for uid in self.uids:
            yield uid, self[uid]

    def check_alignment(self, expected: Iterable[str]) -> None:
        """Raise unless the file holds exactly the ``expected`` uids."""
        expected = set(expected)
        have = set(self._keys)
        missing, extra = sorted(expected - have), sorted(have - expected)
        if missing or extra:
            raise ValueError(
                f"{self.path}: maps do not match the expected images "
                f"(missing {len(missing)}: {missing[:5]}, unexpected {len(extra)}: {extra[:5]})"
            )

    def close(self) -> None:
        self._npz.close()

    def __enter__(self) -> MapReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class MapSet:
    """Several map files read as one (e.g. the folds of one model): each uid must occur once overall."""

    def __init__(self, paths: Iterable[str | Path]):
        self.readers = [MapReader(p) for p in paths]
        self._where: dict[str, MapReader] = {}
        for reader in self.readers:
            for uid in reader.uids:
                if uid in self._where:
                    raise ValueError(f"{uid!r} is in both {self._where[uid].path} and {reader.path}")
                self._where[uid] = reader

    @property
    def uids(self) -> list[str]:
        return list(self._where)

    def __contains__(self, uid: str) -> bool:
        return uid in self._where

    def __getitem__(self, uid: str) -> np.ndarray:
        if uid not in self._where:
            raise KeyError(f"no map for {uid!r} in {[str(r.path) for r in self.readers]}")
        return self._where[uid][uid]

    def check_alignment(self, expected: Iterable[str]) -> None:
        expected = set(expected)
        missing, extra = sorted(expected - set(self._where)), sorted(set(self._where) - expected)
        if missing or extra:
            raise ValueError(f"maps do not match the expected images (missing {missing[:5]}, unexpected {extra[:5]})")


def mean_maps(paths: Iterable[str | Path], uid: str) -> np.ndarray:
    """Mean of one uid's map over several files (e.g. test maps of every fold model)."""
    total, count = None, 0
    for path in paths:
        with MapReader(path) as reader:
            prob = reader[uid]
        total = prob if total is None else total + prob
        count += 1
    if total is None:
        raise ValueError("mean_maps needs at least one file")
    return total / count


def sources_path(npz_path: str | Path) -> Path:
    """Sidecar naming what made a map file: ``<stem>.sources.json``."""
    path = Path(npz_path)
    return path.with_name(path.name.removesuffix(".npz") + ".sources.json")


def file_digests(paths: Sequence[str | Path]) -> dict[str, str]:
    """``{file name: sha256}`` of the given files (e.g. the checkpoints behind a map file)."""
    return {Path(p).name: hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths}


def write_sources(npz_path: str | Path, checkpoints: Sequence[str | Path], tta: Sequence[str]) -> Path:
    """Record which checkpoints (by content) and TTA sets made ``npz_path``, so a reader can tell stale maps."""
    record = {"checkpoints": file_digests(checkpoints), "tta": sorted(set(tta))}
    path = sources_path(npz_path)
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return path


def read_sources(npz_path: str | Path) -> dict | None:
    """The sidecar of ``npz_path``, or None when it is missing or unreadable."""
    try:
        return json.loads(sources_path(npz_path).read_text())
    except (OSError, json.JSONDecodeError):
        return None

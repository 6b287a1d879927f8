"""Grouped, stratified folds written once to ``folds.csv``.

An authentic image and the forged image made from it share a ``case_id``; they always land in the
same fold (StratifiedGroupKFold grouped by case_id, stratified by label).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from shared.config import data_root, param
from shared.dataset import labelled_rows, load_table
from shared.logs import setup_logging

log = logging.getLogger(__name__)
FOLD_COLUMNS = ["uid", "case_id", "split", "label", "fold"]


def assign_folds(table: pd.DataFrame, n_splits: int, seed: int) -> pd.DataFrame:
    """Fold index per labelled image; twins (same case_id) share a fold."""
    rows = labelled_rows(table)
    if rows["case_id"].nunique() < n_splits:
        raise ValueError(f"{rows['case_id'].nunique()} case_ids cannot fill {n_splits} folds")
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    fold = pd.Series(-1, index=rows.index, dtype="int64")
    labels = rows["label"].astype(str)
    for k, (_, valid) in enumerate(splitter.split(rows, labels, groups=rows["case_id"].astype(str))):
        fold.iloc[valid] = k
    return rows.assign(fold=fold)[FOLD_COLUMNS]


def read_folds(path: str | Path) -> pd.DataFrame:
    """Load ``folds.csv`` (``uid, case_id, split, label, fold``)."""
    folds = pd.read_csv(path, dtype={"uid": str, "case_id": str, "split": str, "label": str, "fold": int})
    missing = [c for c in FOLD_COLUMNS if c not in folds.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    return folds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="data root (default: data.root in params.yaml)")
    parser.add_argument("--out", default="artifacts/folds.csv")
    args = parser.parse_args(argv)
    setup_logging()
    table = load_table(data_root(args.root))
    folds = assign_folds(table, len(param("folds.ids")), int(param("folds.seed")))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    folds.to_csv(args.out, index=False)
    summary = folds.groupby(["fold", "label"]).size().unstack(fill_value=0)
    log.info("wrote %s (%d images)\n%s", args.out, len(folds), summary.to_string())


if __name__ == "__main__":
    main()

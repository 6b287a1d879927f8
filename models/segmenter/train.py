"""Train one segmenter on one fold and write its OOF and test probability maps.

    python -m models.segmenter.train --model corr_unet --fold 0     # fold 0 held out
    python -m models.segmenter.train --model corr_unet --fold -1    # fit on every labelled image

Writes, under ``--out`` (default ``artifacts``):
``models/<model>/fold<k>/<model>__<encoder>__fold<k>__ep<E>__of1-<score>.pt`` (best epoch by
validation oF1; ``foldall`` for ``-1``) with ``metrics.json`` (per-epoch history, timings, OOF scores
with and without TTA), and ``oof/<model>/fold<k>.npz`` (+ index): the held-out fold's probability
maps at native size, made with the ``segmenter.tta`` set (not for ``-1``). Test maps are a separate
step (``models/segmenter/test_maps.py``). An interrupted run continues from its ``resume.state``
with ``--resume``.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from models.segmenter.augment import train_transform
from models.segmenter.checkpoints import fold_label, save_checkpoint
from models.segmenter.config import model_entry, model_spec, section, train_config, tta_set
from models.segmenter.data import EvidenceLookup, TrainViews
from models.segmenter.evaluate import score_maps
from models.segmenter.infer import Member, Predictor
from models.segmenter.losses import WeightedLoss
from models.segmenter.maps_out import write_maps
from models.segmenter.networks import build_network, load_encoder_weights, set_threads
from models.segmenter.spec import ModelSpec
from shared.config import data_root, load_params
from shared.dataset import labelled_rows, load_table
from shared.evidence_maps import EvidenceStore
from shared.folds import read_folds
from shared.images import load_image
from shared.logs import setup_logging
from shared.maps import MapReader

log = logging.getLogger(__name__)
VAL_LOSS_VIEWS = 64  # fixed validation views scored each epoch for the validation-loss curve


@dataclass
class FitResult:
    checkpoint: Path
    oof: Path | None
    metrics: dict[str, Any]


def resolve_device(name: str | None) -> torch.device:
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def split_rows(table: pd.DataFrame, folds: pd.DataFrame, fold: int, folds_path: str | Path) -> tuple:
    """(train rows, validation rows) of the labelled images; fold -1 trains on all, validates on none."""
    rows = labelled_rows(table)
    merged = rows.merge(folds[["uid", "fold"]], on="uid", how="left")
    missing = merged.loc[merged["fold"].isna(), "uid"].tolist()
    if missing:
        raise ValueError(
            f"{folds_path}: {len(missing)} labelled image(s) have no fold, e.g. {missing[:3]} (rerun folds)"
        )
    merged["fold"] = merged["fold"].astype(int)
    if fold >= 0 and fold not in set(merged["fold"]):
        raise ValueError(f"{folds_path}: no fold {fold} (folds: {sorted(set(merged['fold']))})")
    if fold < 0:
        return merged.reset_index(drop=True), merged.iloc[0:0]
    train = merged[merged["fold"] != fold].reset_index(drop=True)
    return train, merged[merged["fold"] == fold].reset_index(drop=True)


def _rank(metrics: dict[str, float]) -> tuple[float, ...]:
    """Validation ordering: oF1 first, then threshold-free map quality (ties in oF1 are common early)."""
    return tuple(-math.inf if math.isnan(metrics[k]) else metrics[k] for k in ("oF1", "pixel_ap"))


def validate(
    predictor: Predictor, rows: pd.DataFrame, rule: dict, desc: str, evidence: EvidenceLookup | None = None
) -> dict[str, float]:
    maps = {}
    for _, row in tqdm(rows.iterrows(), total=len(rows), desc=desc, leave=False, disable=None):
        extra = evidence(row["uid"]) if evidence is not None else None
        maps[row["uid"]] = predictor.predict(load_image(row["image_path"]), extra)
    return score_maps(rows, maps.__getitem__, **rule)


def view_loss(network: torch.nn.Module, views: list, criterion, normalise, dev: torch.device) -> float:
    """Mean loss of the network (eval mode) on fixed validation views: the curve beside the training loss."""
    was_training = network.training
    network.eval()
    total = 0.0
    with torch.inference_mode():
        for start in range(0, len(views), 8):
            images = torch.stack([v[0] for v in views[start : start + 8]]).to(dev)
            targets = torch.stack([v[1] for v in views[start : start + 8]]).to(dev)
            total += float(criterion(network(normalise(images)), targets)) * len(images)
    network.train(was_training)
    return total / max(1, len(views))


def open_evidence(spec: ModelSpec, folder: str | Path) -> EvidenceLookup | None:
    """The precomputed evidence a model reads (None for RGB-only models); checks it was made with its spec."""
    if spec.evidence is None:
        return None
    store = EvidenceStore(folder)
    store.check_spec(spec.evidence)
    return store.__getitem__


def fit(
    model: str,
    fold: int,
    folds_path: str | Path,
    root: str | Path,
    out: str | Path = "artifacts",
    params: dict | None = None,
    resume: bool = False,
    device: str | None = None,
    evidence_dir: str | Path = "artifacts/evidence",
) -> FitResult:
    """Train ``model`` with ``fold`` held out (``-1``: no hold-out) and write checkpoint and maps.

    Models that read evidence channels take them from ``evidence_dir`` (the ``evidence`` stage).
    """
    params = load_params() if params is None else params
    settings = section(params)
    entry = model_entry(model, params)
    spec, cfg = model_spec(model, entry), train_config(entry)
    rule = dict(settings["eval"])
    seed = int(settings["seed"]) * 1000 + (fold if fold >= 0 else 999)  # fold -1: its own stream
    dev = resolve_device(device or settings.get("device"))
    out = Path(out)
    ckpt_dir = out / "models" / model / f"fold{fold_label(fold)}"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    resume_path = ckpt_dir / "resume.state"  # not *.pt: only finished checkpoints match that

    table = load_table(root)
    train_rows, val_rows = split_rows(table, read_folds(folds_path), fold, folds_path)
    if cfg.max_train_images is not None and len(train_rows) > cfg.max_train_images:
        train_rows = train_rows.sample(cfg.max_train_images, random_state=seed % 2**32).reset_index(drop=True)
    log.info(
        "%s fold %s on %s: %d train, %d validation images", model, fold_label(fold), dev, len(train_rows), len(val_rows)
    )

    seed_everything(seed)
    network = build_network(spec)
    if cfg.pretrained:
        loaded = load_encoder_weights(network, cfg.pretrained)
        log.info("loaded %d encoder tensors from %s", loaded, cfg.pretrained)
    network.to(dev)
    evidence = open_evidence(spec, evidence_dir)
    augment = train_transform(spec.policy.pad_value, evidence=evidence is not None)
    dataset = TrainViews(train_rows, spec.policy, cfg.global_p, cfg.positive_crop_p, augment, seed, evidence=evidence)
    held_out = TrainViews(val_rows, spec.policy, cfg.global_p, cfg.positive_crop_p, None, seed + 1, evidence=evidence)
    picks = np.unique(np.linspace(0, len(held_out) - 1, min(len(held_out), VAL_LOSS_VIEWS)).astype(int))
    val_views = [held_out[int(i)] for i in picks] if len(held_out) else []
    batch_size = min(cfg.batch_size, len(dataset))
    steps = max(1, len(dataset) // batch_size)
    optimizer = torch.optim.AdamW(network.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.lr, total_steps=cfg.epochs * steps, pct_start=cfg.warmup
    )
    amp = dev.type == "cuda"
    scaler = torch.amp.GradScaler(dev.type, enabled=amp)
    criterion = WeightedLoss(cfg.loss).to(dev)
    mean, std = (torch.tensor(v, device=dev).view(1, -1, 1, 1) for v in spec.input_stats())

    def normalise(images: torch.Tensor) -> torch.Tensor:
        return (images.to(dev).float() - mean) / std

    history: list[dict] = []
    start_epoch, best, best_state, stale = 0, None, None, 0
    if resume and resume_path.is_file():
        state = torch.load(resume_path, map_location=dev, weights_only=True)
        network.load_state_dict(state["network"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"])
        start_epoch, history, stale = state["epoch"] + 1, state["history"], state["stale"]
        best, best_state = state["best"], state["best_state"]
        log.info("resumed from %s after epoch %d", resume_path, state["epoch"])

    timings = {"train_s": 0.0, "validate_s": 0.0}
    for epoch in range(start_epoch, cfg.epochs):
        network.train()
        dataset.set_epoch(epoch)
        loader = DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=True,
            drop_last=True,
            num_workers=cfg.num_workers,
            generator=torch.Generator().manual_seed(seed * 1000 + epoch),
        )
        tic, losses = time.perf_counter(), []
        bar = tqdm(loader, desc=f"{model} fold{fold_label(fold)} ep{epoch}", leave=False, disable=None)
        for images, targets in bar:
            images = normalise(images)
            targets = targets.to(dev)
            with torch.autocast(dev.type, enabled=amp):
                loss = criterion(network(images), targets)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            losses.append(float(loss.detach()))
            bar.set_postfix(loss=f"{np.mean(losses):.4f}")
        timings["train_s"] += time.perf_counter() - tic
        record = {"epoch": epoch, "loss": float(np.mean(losses)), "lr": scheduler.get_last_lr()[0]}
        if len(val_rows):
            tic = time.perf_counter()
            record["val_loss"] = view_loss(network, val_views, criterion, normalise, dev)
            if cfg.select == "best":  # "last" scores only the final model (its OOF maps): no per-epoch pass
                quick = Predictor([Member(spec, network)], str(dev), global_only=True)
                record |= validate(quick, val_rows, rule, f"validate ep{epoch}", evidence)
            timings["validate_s"] += time.perf_counter() - tic
        history.append(record)
        improved = best is None or not len(val_rows) or cfg.select == "last" or _rank(record) > _rank(best)
        if improved:
            best, best_state, stale = record, copy.deepcopy(network.state_dict()), 0
        else:
            stale += 1
        log.info("%s fold %s %s", model, fold_label(fold), _describe(record, improved))
        torch.save(
            {
                "network": network.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "epoch": epoch,
                "history": history,
                "stale": stale,
                "best": best,
                "best_state": best_state,
            },
            resume_path,
        )
        if len(val_rows) and stale >= cfg.patience:
            log.info("early stop: no improvement for %d epochs", stale)
            break

    network.load_state_dict(best_state)
    score = best.get("oF1") if len(val_rows) else None
    tta = tta_set(params)
    meta = {"train_images": len(train_rows), "profile": params.get("profile", "demo"), "tta": tta, "history": history}
    checkpoint = save_checkpoint(ckpt_dir, spec, network, fold, best["epoch"], score, meta)
    log.info("wrote %s", checkpoint)

    predictor = Predictor([Member(spec, network)], str(dev), tta)
    metrics: dict[str, Any] = {"model": model, "fold": fold, "best_epoch": best["epoch"], "tta": tta}
    metrics |= {"history": history, "validation_global_view": {k: v for k, v in best.items() if k != "epoch"}}
    oof_path = None
    if len(val_rows):
        tic = time.perf_counter()
        oof_path = write_maps(
            predictor, val_rows, out / "oof" / model / f"fold{fold}.npz", f"oof {model} fold{fold}", evidence
        )
        timings["oof_s"] = time.perf_counter() - tic
        with MapReader(oof_path) as reader:
            reader.check_alignment(val_rows["uid"])
            metrics["oof"] = score_maps(val_rows, reader.__getitem__, **rule)
        log.info("OOF %s fold %s with TTA %r: %s", model, fold, tta, _describe(metrics["oof"]))
    metrics["timings"] = timings
    (ckpt_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float) + "\n")
    resume_path.unlink(missing_ok=True)
    return FitResult(checkpoint, oof_path, metrics)


def _describe(record: dict, improved: bool = False) -> str:
    text = ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in record.items())
    return text + (" *" if improved else "")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="entry of segmenter.models in params.yaml")
    parser.add_argument("--fold", type=int, required=True, help="held-out fold; -1 fits on every labelled image")
    parser.add_argument("--folds", default="artifacts/folds.csv", help="folds.csv written by the folds stage")
    parser.add_argument("--root", help="data root (default: data.root in params.yaml)")
    parser.add_argument("--out", default="artifacts", help="artefact root (models/ and oof/ go under it)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run from its resume.pt")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 … (default: segmenter.device)")
    parser.add_argument("--evidence", default="artifacts/evidence", help="evidence folder (the evidence stage)")
    args = parser.parse_args(argv)
    setup_logging()
    set_threads(section().get("threads", 0))
    fit(
        args.model,
        args.fold,
        args.folds,
        data_root(args.root),
        args.out,
        resume=args.resume,
        device=args.device,
        evidence_dir=args.evidence,
    )


if __name__ == "__main__":
    main()

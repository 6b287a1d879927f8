"""Segmenter speed per active model (params.yaml profile): training and inference images/s, with and without TTA.

Training: optimizer steps on ``batch_size`` random ``size x size`` views (network + loss + backward).
Inference: ``Predictor.predict`` on figure-sized images through the model's input policy (global
view + tiles), TTA ``none`` and the configured ``segmenter.tta`` set, with the evidence channels
precomputed (they are computed once per figure for all models; see the ``evidence`` section). Wall-clock rates depend on
what else runs on the 2 shared cores: every row also gives the 1-minute load average at its end and
images per CPU-second of this process.
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch

from models.segmenter.config import active_models, model_entry, model_spec, train_config, tta_set
from models.segmenter.infer import Member, Predictor
from models.segmenter.losses import WeightedLoss
from models.segmenter.networks import build_network
from models.segmenter.tta import tta_views
from shared.evidence import compute_evidence

INFER_SHAPES = [(1000, 760), (420, 560), (96, 1200)]  # a compound figure, a single panel, a strip of blots


def _train_rate(spec, cfg, steps: int = 6) -> tuple[float, float]:
    torch.manual_seed(0)
    net = build_network(spec)
    loss_fn = WeightedLoss(cfg.loss)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr)
    size, batch = spec.policy.size, cfg.batch_size
    x = torch.randn(batch, spec.in_channels, size, size)
    y = (torch.rand(batch, 1, size, size) > 0.97).float()
    for step in range(steps + 2):
        if step == 2:
            start, cpu = time.perf_counter(), time.process_time()
        loss = loss_fn(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    images = steps * batch
    return images / (time.perf_counter() - start), images / (time.process_time() - cpu)


def _infer_rate(spec, tta: str, repeats: int = 1) -> tuple[float, float]:
    torch.manual_seed(0)
    predictor = Predictor([Member(spec, build_network(spec).eval())], tta=tta)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (*shape, 3), dtype=np.uint8) for shape in INFER_SHAPES]
    # evidence is computed once per figure for every model (its cost is the `evidence` section)
    evidence = [compute_evidence(image, spec.evidence) if spec.evidence else None for image in images]
    predictor.predict(images[1], evidence[1])  # warm-up
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        for image, extra in zip(images, evidence, strict=True):
            predictor.predict(image, extra)
    count = repeats * len(images)
    return count / (time.perf_counter() - start), count / (time.process_time() - cpu)


def run() -> list[dict]:
    tta = tta_set()
    rows = []
    for name in active_models():
        entry = model_entry(name)
        spec, cfg = model_spec(name, entry), train_config(entry)
        train, train_cpu = _train_rate(spec, cfg)
        rows.append(
            {
                "model": name,
                "what": f"train, {spec.policy.size} px views, batch {cfg.batch_size}",
                "images_per_s": train,
                "images_per_cpu_s": train_cpu,
                "load_avg_1min": os.getloadavg()[0],
            }
        )
        for views in dict.fromkeys(["none", tta]):
            rate, rate_cpu = _infer_rate(spec, views)
            rows.append(
                {
                    "model": name,
                    "what": f"predict figures {INFER_SHAPES}, TTA {views} ({tta_views(views)} views)",
                    "images_per_s": rate,
                    "images_per_cpu_s": rate_cpu,
                    "load_avg_1min": os.getloadavg()[0],
                }
            )
    return rows

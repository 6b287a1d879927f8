"""Training sanity check that can fail: every active segmenter must overfit a handful of figures.

Four forged figures of the project's own generator (the real params.yaml models, smaller views),
their evidence channels computed as the pipeline does, fixed global views, plain full-batch steps on
the CPU. A network that cannot learn (broken loss, frozen or disconnected weights, inputs or
targets misaligned, evidence that never reaches it) keeps its loss and fails here, in ``make test``,
long before a report would show it.
"""

import copy

import numpy as np
import pytest
import torch

from models.segmenter.config import active_models, model_entry, model_spec, train_config
from models.segmenter.data import sample_view, with_evidence
from models.segmenter.losses import WeightedLoss
from models.segmenter.networks import build_network
from models.segmenter.spec import InputPolicy
from shared.config import REPO_ROOT, load_params
from shared.evidence import compute_evidence
from shared.synth.case import make_case
from shared.synth.config import load_config

PARAMS = load_params(REPO_ROOT / "params.yaml")
STEPS = 60
LEARNING_RATE = 1e-3
VIEW = 96
FIGURES = 4


def figure_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed 96 px global views of four forged synthetic figures with their evidence, and their targets."""
    config = load_config("demo", copy.deepcopy(PARAMS))
    policy = InputPolicy(size=VIEW, max_pixels=VIEW * VIEW * 4)
    images, targets = [], []
    index = 0
    while len(images) < FIGURES:
        case = make_case(config, "train", index)
        index += 1
        if case.forged is None or case.masks is None or case.masks.max(axis=0).mean() < 0.02:
            continue  # copies too small to survive a 96 px view
        spec = model_spec(active_models(PARAMS)[0], model_entry(active_models(PARAMS)[0], PARAMS)).evidence
        evidence = compute_evidence(case.forged, spec)
        stacked = with_evidence(case.forged, lambda _uid, e=evidence: e, "case")
        view, target = sample_view(stacked, case.masks, policy, np.random.default_rng(index), 1.0, 0.0)
        images.append(torch.from_numpy(view).permute(2, 0, 1))
        targets.append(torch.from_numpy(target)[None])
    return torch.stack(images), torch.stack(targets)


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    return figure_batch()


@pytest.mark.parametrize("model", active_models(PARAMS))
def test_segmenter_overfits_a_handful_of_figures(model, batch):
    spec = model_spec(model, model_entry(model, PARAMS))
    cfg = train_config(model_entry(model, PARAMS))
    torch.manual_seed(0)
    network = build_network(spec).train()
    mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in spec.input_stats())
    images, targets = batch
    inputs = (images.float() - mean) / std
    criterion = WeightedLoss(cfg.loss)
    optimizer = torch.optim.AdamW(network.parameters(), lr=LEARNING_RATE)
    losses = []
    for _ in range(STEPS):
        loss = criterion(network(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert np.isfinite(losses).all()
    assert min(losses[-5:]) < 0.5 * losses[0], f"{model}: loss {losses[0]:.3f} -> {losses[-1]:.3f} in {STEPS} steps"

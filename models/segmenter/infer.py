"""Inference: checkpoints in, probability maps out. Imports nothing that only training needs.

    predictor = load_predictor(["fold0.pt", "fold1.pt"], device="cpu", tta=True)
    prob = predictor.predict(image_rgb_uint8)    # float32 H x W in [0, 1]

Each checkpoint carries its own architecture, input policy and normalisation; the predictor runs
every member through its policy (global view + tiles, see ``policy.py``) and TTA and returns the
mean of their probability maps.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.segmenter.checkpoints import load_checkpoint
from models.segmenter.networks import build_network
from models.segmenter.policy import predict_image
from models.segmenter.spec import ModelSpec
from models.segmenter.tta import with_tta
from shared.evidence import EvidenceSpec, compute_evidence

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@dataclass
class Member:
    """One network with its spec (and, when loaded from disk, where from and what it scored)."""

    spec: ModelSpec
    network: nn.Module
    meta: dict = field(default_factory=dict)


def as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Check and normalise the input: ``(H, W)`` grey or ``(H, W, 3)`` RGB, uint8."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 numpy image, got {getattr(image, 'dtype', type(image))}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    return image


def resolve_tta(tta: bool | str, member: Member) -> str:
    """``True``: the TTA set the member's OOF maps were made with (stored in its checkpoint);
    ``False``: none; a name: that set."""
    if tta is True:
        return str(member.meta.get("tta", "none"))
    return "none" if tta is False else tta


class Predictor:
    """Mean probability map of several segmenters (e.g. the fold models of one or more entries)."""

    def __init__(
        self,
        members: Sequence[Member],
        device: str = "cpu",
        tta: bool | str = "none",
        batch_size: int = 8,
        global_only: bool = False,
    ):
        if not members:
            raise ValueError("a predictor needs at least one network")
        self.device = torch.device(device)
        self.batch_size, self.global_only = batch_size, global_only
        self.members = list(members)
        self.tta = [resolve_tta(tta, m) for m in self.members]
        self._models = [
            with_tta(m.network, name).to(self.device) for m, name in zip(self.members, self.tta, strict=True)
        ]

    def _forward(self, member: Member, model: nn.Module):
        mean, std = (torch.tensor(v, device=self.device).view(1, -1, 1, 1) for v in member.spec.input_stats())
        autocast = self.device.type == "cuda"

        def forward(batch: np.ndarray) -> np.ndarray:
            x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device).permute(0, 3, 1, 2).float()
            with torch.inference_mode(), torch.autocast(self.device.type, enabled=autocast):
                prob = model((x - mean) / std)
            return prob[:, 0].float().cpu().numpy()

        return forward

    @property
    def evidence_specs(self) -> list[EvidenceSpec]:
        """The distinct evidence specs the members read (empty: RGB-only members)."""
        return list(dict.fromkeys(m.spec.evidence for m in self.members if m.spec.evidence is not None))

    def predict(self, image: np.ndarray, evidence: np.ndarray | None = None) -> np.ndarray:
        """Float32 ``H x W`` forgery probabilities in [0, 1] for one RGB uint8 image.

        ``evidence``: the image's precomputed uint8 ``(H, W, C)`` evidence (``shared.evidence``), used by
        members that read it; computed here, once for all members, when not given.
        """
        image = as_rgb_uint8(image)
        computed: dict[EvidenceSpec, np.ndarray] = {}
        total = np.zeros(image.shape[:2], np.float32)
        for member, model in zip(self.members, self._models, strict=True):
            was_training = member.network.training
            member.network.eval()
            spec = member.spec.evidence
            if spec is None:
                inputs = image
            else:
                if evidence is None and spec not in computed:
                    computed[spec] = compute_evidence(image, spec)
                extra = evidence if evidence is not None else computed[spec]
                if extra.shape[:2] != image.shape[:2] or extra.shape[2] != member.spec.evidence_channels:
                    raise ValueError(f"evidence of shape {extra.shape} does not fit an image of {image.shape[:2]}")
                inputs = np.concatenate([image, extra], axis=2)
            total += predict_image(
                inputs, member.spec.policy, self._forward(member, model), self.batch_size, self.global_only
            )
            member.network.train(was_training)
        return np.clip(total / len(self.members), 0.0, 1.0)


def load_member(path: str | Path, device: str = "cpu") -> Member:
    """Rebuild one network from a self-describing checkpoint."""
    checkpoint = load_checkpoint(path)
    network = build_network(checkpoint.spec)
    try:
        network.load_state_dict(checkpoint.state_dict)
    except RuntimeError as exc:
        raise ValueError(f"{path}: weights do not fit the network the checkpoint describes ({exc})") from exc
    return Member(checkpoint.spec, network.to(device).eval(), checkpoint.meta | {"path": str(path)})


def load_predictor(
    checkpoint_paths: Sequence[str | Path], device: str = "cpu", tta: bool | str = "none", batch_size: int = 8
) -> Predictor:
    """A :class:`Predictor` averaging the given checkpoints (e.g. every fold model of a segmenter).

    ``tta``: a set name (``none``, ``hflip``, ``flips``, ``d4``), ``True`` for the set each checkpoint's
    OOF maps were made with (so predictions match what the ensemble was tuned on), ``False`` for none.
    """
    if isinstance(checkpoint_paths, str | Path):
        checkpoint_paths = [checkpoint_paths]
    return Predictor([load_member(p, device) for p in checkpoint_paths], device, tta, batch_size)

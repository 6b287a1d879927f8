"""Build a segmenter network from its :class:`~models.segmenter.spec.ModelSpec`.

smp is the registry of architectures and timm (``tu-<name>``) the registry of encoders, so a model
entry names them and nothing here switches on names. Encoders always start from random weights
(``encoder_weights=None``: nothing is fetched from a hub); pretrained weights come only from a local
file via :func:`load_encoder_weights`.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from models.segmenter.selfcorr import SelfCorrelationNet
from models.segmenter.spec import ModelSpec

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import segmentation_models_pytorch as smp

# Initial evidence shortcut: logit 8 x (product of the evidence channels) - 4, so an exact, coherent
# repeat starts at +4 and an isolated or inexact one below 0 (training refines every weight).
EVIDENCE_PRODUCT_LOGIT = 8.0
EVIDENCE_BIAS = -4.0


class EvidenceShortcut(nn.Module):
    """A network whose input carries evidence channels after RGB; a 1x1 function of the evidence
    (each channel and their product) is added to its logits, so "exact, coherent repeat = forged"
    holds from the first step and the network learns what to add (context: labels, ladders, bands)."""

    def __init__(self, base: nn.Module, channels: int):
        super().__init__()
        self.base, self.channels = base, channels
        self.shortcut = nn.Conv2d(channels + 1, 1, 1)
        with torch.no_grad():
            self.shortcut.weight.zero_()
            self.shortcut.weight[0, channels] = EVIDENCE_PRODUCT_LOGIT
            self.shortcut.bias.fill_(EVIDENCE_BIAS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        evidence = x[:, -self.channels :]
        product = evidence.prod(dim=1, keepdim=True)
        return self.base(x) + self.shortcut(torch.cat([evidence, product], dim=1))


def build_network(spec: ModelSpec) -> nn.Module:
    """A randomly initialised network with one output channel (forgery logits)."""
    try:
        network = smp.create_model(
            spec.arch,
            encoder_name=spec.encoder,
            encoder_weights=None,
            in_channels=spec.in_channels,
            classes=1,
            **spec.decoder,
        )
    except (KeyError, ValueError, RuntimeError, TypeError) as exc:
        raise ValueError(
            f"segmenter {spec.name!r}: cannot build {spec.arch} with encoder {spec.encoder}: {exc}"
        ) from exc
    if spec.corr is not None:
        network = SelfCorrelationNet(network, spec.corr)
    if spec.evidence_channels:
        network = EvidenceShortcut(network, spec.evidence_channels)
    return network


def set_threads(threads: int) -> None:
    """``segmenter.threads`` CPU threads for torch (0: torch's default, every core). On cores shared
    with other jobs one thread is far faster than two fighting for them."""
    if threads > 0:
        torch.set_num_threads(threads)


def encoder_of(network: nn.Module) -> nn.Module:
    """The smp encoder inside a (possibly self-correlation-wrapped) network."""
    while isinstance(network, EvidenceShortcut | SelfCorrelationNet):
        network = network.base
    return network.encoder


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: pretrained encoder weights not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path}: not a readable weights file ({exc})") from exc
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a state dict of tensors")
    return state


def load_encoder_weights(network: nn.Module, path: str | Path, min_fraction: float = 0.9) -> int:
    """Load encoder weights from a local file (a timm or smp-encoder state dict); returns tensors loaded.

    The file's keys are matched against the smp encoder and, for ``tu-`` encoders, the timm model
    inside it (``encoder.``/``model.`` prefixes are tolerated). Fails, naming the file, unless at least
    ``min_fraction`` of the encoder's tensors are found with matching shapes.
    """
    path = Path(path)
    state = _read_state_dict(path)
    encoder = encoder_of(network)
    targets = [encoder] + ([encoder.model] if hasattr(encoder, "model") else [])
    best: tuple[int, nn.Module, dict[str, torch.Tensor]] | None = None
    for target in targets:
        own = target.state_dict()
        matched = {}
        for key, value in state.items():
            for candidate in (key, key.removeprefix("encoder."), key.removeprefix("model."), "model." + key):
                if candidate in own and own[candidate].shape == value.shape:
                    matched[candidate] = value
                    break
        if best is None or len(matched) > best[0]:
            best = (len(matched), target, matched)
    count, target, matched = best
    total = len(target.state_dict())
    if count < min_fraction * total:
        raise ValueError(
            f"{path}: only {count} of {total} encoder tensors match {type(target).__name__} "
            f"(wrong encoder for this file?)"
        )
    nn.Module.load_state_dict(target, matched, strict=False)  # some smp encoders override it without strict
    return count

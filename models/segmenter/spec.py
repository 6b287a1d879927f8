"""What a segmenter is, as plain data: architecture, encoder, optional self-correlation, input policy.

A :class:`ModelSpec` is stored inside every checkpoint, so inference rebuilds the exact network and
input handling without ``params.yaml``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from shared.evidence import CHANNELS as EVIDENCE_CHANNELS
from shared.evidence import EvidenceSpec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class CorrSpec:
    """Self-correlation block (``selfcorr.py``): at encoder stride ``stride``, each position's ``topk``
    best similarities with every other position (those within ``radius`` cells excluded) feed the
    decoder; from a learned ``dim``-d embedding, plus normalised grey patches when ``patch`` (with
    mirrored patches when ``mirror``) of ``patch_size`` px compared every ``patch_step`` px."""

    stride: int = 8
    dim: int = 64
    topk: int = 8
    radius: int = 1
    patch: bool = True
    mirror: bool = True
    patch_size: int = 8
    patch_step: int = 1


@dataclass(frozen=True)
class InputPolicy:
    """How an image of any size becomes network inputs (see ``models/segmenter/policy.py``).

    ``size``: side of the square training sample and of inference tiles (multiple of 32).
    ``max_pixels``: images above this area are downscaled (keeping aspect) before tiling.
    ``overlap``: fraction of a tile shared with its neighbour.
    ``global_weight``: weight of the global (whole-image) view when tiles are also used.
    ``pad_value``: grey level used to pad (255: the white background of figures).
    """

    size: int = 256
    max_pixels: int = 1024 * 1024
    overlap: float = 0.25
    global_weight: float = 0.5
    pad_value: int = 255

    def __post_init__(self) -> None:
        if self.size <= 0 or self.size % 32:
            raise ValueError(f"input size must be a positive multiple of 32, got {self.size}")
        if not 0.0 <= self.overlap < 1.0:
            raise ValueError(f"input overlap must be in [0, 1), got {self.overlap}")
        if not 0.0 <= self.global_weight <= 1.0:
            raise ValueError(f"input global_weight must be in [0, 1], got {self.global_weight}")
        if self.max_pixels < self.size * self.size:
            raise ValueError(f"input max_pixels ({self.max_pixels}) must be at least size^2 ({self.size**2})")


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a segmenter and feed it: stored in each checkpoint.

    ``evidence``: when set, the network's input is the RGB image plus the repetition evidence channels
    of ``shared.evidence`` computed with this spec (``None``: RGB only).
    """

    name: str
    arch: str
    encoder: str
    decoder: dict[str, Any] = field(default_factory=dict)
    corr: CorrSpec | None = None
    policy: InputPolicy = field(default_factory=InputPolicy)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    evidence: EvidenceSpec | None = None

    @property
    def evidence_channels(self) -> int:
        return len(EVIDENCE_CHANNELS) if self.evidence is not None else 0

    @property
    def in_channels(self) -> int:
        return 3 + self.evidence_channels

    def input_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and std in uint8 units: ImageNet for RGB, ``[0, 255] -> [0, 1]`` for evidence."""
        extra = self.evidence_channels
        mean = tuple(m * 255.0 for m in self.mean) + (0.0,) * extra
        std = tuple(s * 255.0 for s in self.std) + (255.0,) * extra
        return mean, std

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["evidence"] = self.evidence.to_dict() if self.evidence is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        """Inverse of :meth:`to_dict`; unknown keys raise so a stale checkpoint fails loudly."""
        data = dict(data)
        corr = data.pop("corr", None)
        policy = data.pop("policy", None) or {}
        evidence = data.pop("evidence", None)
        return cls(
            evidence=EvidenceSpec.from_dict(evidence) if evidence is not None else None,
            corr=CorrSpec(**corr) if corr else None,
            policy=InputPolicy(**policy),
            decoder=dict(data.pop("decoder", None) or {}),
            mean=tuple(data.pop("mean", IMAGENET_MEAN)),
            std=tuple(data.pop("std", IMAGENET_STD)),
            **data,
        )

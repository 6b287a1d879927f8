"""Self-correlation: each position of an image compared with every other position of the same image.

A copy-move forgery makes two regions of one image look alike. Plain encoders see one window at a
time and cannot compare far-apart regions; this block does, on the grid of one encoder level
(stride ``s``), from two descriptors:

* **learned**: a 1x1 embedding of the encoder features there (improves as the encoder trains);
* **patch** (optional): normalised cross-correlation of native-resolution grey patches, the
  classical block-matching cue: each grid cell's patch against the patches at *every* pixel offset
  (so a translated copy matches its source exactly, whatever the offset), optionally mirrored
  (flipped copies). It needs no training, so it works from the first step. Flat patches (std
  below ~2 grey levels) get a zero descriptor: white background matches nothing.

For each descriptor, a cell's similarities to everything outside its own neighbourhood (``radius``
cells: neighbours are always alike) are sorted and the ``k`` best kept as ``k`` maps. A
duplicated region shows as "one very good match elsewhere". The maps are fused (3x3 conv, residual)
into the features the decoder reads. Rows are processed in chunks, so memory is O(chunk x cells).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as nnf

from models.segmenter.spec import CorrSpec

MAX_CHUNK_ELEMENTS = 1 << 24
FLAT_STD = 0.035  # ~2 grey levels in ImageNet-normalised units (1 level = 1 / (255 x 0.226))
RESIDUAL_FLOOR = 1e-3  # similarities closer to 1 than this count as exact
# Initial shortcut weight of the best patch match (match strength 1 = exact copy, ~0.33 = a natural
# look-alike at NCC 0.9): exact copies start at logit +EXACT/2, look-alikes below 0, no match at -EXACT/2.
EXACT_REPEAT_LOGIT = 6.0
DETREND_ORDER = 1  # degree of the polynomial removed from patches before correlating (see _normalise_patches)


def match_strength(similarity: torch.Tensor) -> torch.Tensor:
    """``-log10(1 - s + 1e-3) / 3``: spreads the decisive range near 1 (0.9 → 0.33, 0.99 → 0.65, 1 → 1).

    Natural look-alikes reach cosine 0.9; only copies reach 0.99+. On a log scale of the residual that
    difference is as large as the one between 0 and 0.9, so a few weights can learn the cut.
    """
    return -torch.log10((1.0 - similarity).clamp_min(0.0) + RESIDUAL_FLOOR) / 3.0


def grid_positions(height: int, width: int, step: float, offset: float, device) -> torch.Tensor:
    """``(N, 2)`` centres (y, x) of a row-major grid of ``height x width`` cells."""
    ys, xs = torch.meshgrid(torch.arange(height, device=device), torch.arange(width, device=device), indexing="ij")
    return torch.stack([ys.flatten(), xs.flatten()], dim=1).float() * step + offset


def topk_similarity(
    keys: torch.Tensor,
    queries: list[torch.Tensor],
    key_pos: torch.Tensor,
    query_pos: torch.Tensor,
    min_distance: float,
    topk: int,
) -> torch.Tensor:
    """``(B, N, k)``: each key's ``k`` best similarities with query positions at least ``min_distance`` away.

    ``keys`` is ``(B, D, N)`` with unit (or zero) columns; each query variant is ``(B, D, M)`` (e.g. the
    same descriptors, or mirrored ones). Distances are Chebyshev, between ``key_pos`` and ``query_pos``.
    The best over variants counts. Missing ranks (tiny images) are -1.
    """
    batch, _, n = keys.shape
    m = queries[0].shape[-1]
    k = min(topk, m)
    chunk = max(1, MAX_CHUNK_ELEMENTS // max(1, batch * m * len(queries)))
    tops = []
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        block = keys[:, :, start:stop].transpose(1, 2)
        sim = torch.stack([block @ q for q in queries]).amax(0) if len(queries) > 1 else block @ queries[0]
        near = (key_pos[start:stop, None, :] - query_pos[None, :, :]).abs().amax(-1) < min_distance
        tops.append(sim.masked_fill(near, -1.0).topk(k, dim=-1).values)
    top = torch.cat(tops, dim=1)
    return nnf.pad(top, (0, topk - k), value=-1.0) if k < topk else top


def detrend_projector(side: int, order: int, device=None) -> torch.Tensor:
    """``(side², side²)`` projector removing polynomials of total degree <= ``order`` from a flattened patch."""
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, side), torch.linspace(-1, 1, side), indexing="ij")
    ys, xs = ys.flatten().double(), xs.flatten().double()
    basis = torch.stack([ys**i * xs**j for i in range(order + 1) for j in range(order + 1 - i)], dim=1)
    q, _ = torch.linalg.qr(basis)
    return (torch.eye(side * side, dtype=torch.float64) - q @ q.T).float().to(device)


def _normalise_patches(patches: torch.Tensor, side: int, order: int = DETREND_ORDER) -> torch.Tensor:
    """Zero-mean (and, with ``order`` >= 1, de-trended) unit-norm patch columns; flat ones become 0.

    Removing the best-fitting plane (or quadric) matters: any two smooth gradients correlate
    perfectly after normalisation, so without it every band edge and vignette "matches" elsewhere.
    """
    if order >= 1:
        patches = detrend_projector(side, order, patches.device) @ patches
    else:
        patches = patches - patches.mean(dim=1, keepdim=True)
    norm = patches.norm(dim=1, keepdim=True)
    return torch.where(norm < FLAT_STD * side, torch.zeros_like(patches), patches / norm.clamp_min(1e-6))


def textured(grey: torch.Tensor, size: int, stride: int, padding: int) -> torch.Tensor:
    """``(B, h, w)`` 1 where a ``size`` patch has texture in *every* direction, else 0.

    The smaller eigenvalue of the patch's structure tensor (mean squared gradient along its weakest
    direction) must exceed ``FLAT_STD``²: flat areas, straight edges, lines and frame borders cannot be
    located along themselves (any shift along a line matches), so they are left out of matching.
    """
    gy, gx = torch.gradient(grey[:, 0], dim=(1, 2))
    tensor = torch.stack([gx * gx, gy * gy, gx * gy], dim=1)
    sxx, syy, sxy = nnf.avg_pool2d(tensor, size, stride=stride, padding=padding, count_include_pad=True).unbind(1)
    weakest = (sxx + syy) / 2 - torch.sqrt(((sxx - syy) / 2) ** 2 + sxy**2)
    return (weakest > FLAT_STD**2).float()


def patch_similarity(
    image: torch.Tensor, stride: int, topk: int, radius: int, mirror: bool, size: int = 8, step: int = 1
) -> torch.Tensor:
    """``(B, N, k)`` normalised cross-correlation of grey ``size`` x ``size`` patches at native resolution.

    Keys are the patches centred on the cells of the ``stride`` grid (the encoder level's grid);
    queries are the patches at every ``step`` pixels, so a copy moved by any offset matches its
    source exactly (NCC 1 for a pure translation when ``step`` is 1). With ``mirror``, horizontally
    and vertically flipped query patches match flipped copies too. Patches closer than
    ``max(size, (radius + 1) x stride)`` px are not compared. Flat patches score 0.
    """
    if size < stride or (size - stride) % 2:
        raise ValueError(f"patch size {size} must be >= stride {stride} with an even difference")
    grey = image.float().mean(dim=1, keepdim=True)
    height, width = grey.shape[-2] // stride, grey.shape[-1] // stride
    pad = (size - stride) // 2
    keys = _normalise_patches(nnf.unfold(grey, size, padding=pad, stride=stride), size)
    queries = _normalise_patches(nnf.unfold(grey, size, stride=step), size)
    keys = keys * textured(grey, size, stride, pad).flatten(1)[:, None]
    queries = queries * textured(grey, size, step, 0).flatten(1)[:, None]
    qh, qw = (grey.shape[-2] - size) // step + 1, (grey.shape[-1] - size) // step + 1
    variants = [queries]
    if mirror:
        grid = queries.view(queries.shape[0], size, size, -1)
        variants += [grid.flip(2).reshape_as(queries), grid.flip(1).reshape_as(queries)]
    key_pos = grid_positions(height, width, stride, stride / 2, image.device)
    query_pos = grid_positions(qh, qw, float(step), size / 2, image.device)
    # Flat patches (zero descriptors) match nothing: leave them out of the search (white space of
    # compound figures is often half the image), and give flat keys similarity 0.
    out = torch.zeros(keys.shape[0], keys.shape[2], topk, device=image.device)
    for b in range(keys.shape[0]):
        key_on, query_on = keys[b].abs().amax(0) > 0, queries[b].abs().amax(0) > 0
        if key_on.any() and query_on.any():
            out[b, key_on] = topk_similarity(
                keys[b : b + 1][:, :, key_on],
                [v[b : b + 1][:, :, query_on] for v in variants],
                key_pos[key_on],
                query_pos[query_on],
                max(size, (radius + 1) * stride),
                topk,
            )[0]
    return out


class SelfCorrelation(nn.Module):
    """Residual block adding top-k self-similarity evidence to the feature map of one encoder level."""

    def __init__(self, in_channels: int, spec: CorrSpec):
        super().__init__()
        if in_channels <= 0:
            raise ValueError(f"self-correlation needs features with channels, got {in_channels}")
        self.spec = spec
        self.embed = nn.Sequential(nn.Conv2d(in_channels, spec.dim, 1, bias=False), nn.BatchNorm2d(spec.dim))
        maps = spec.topk * (2 if spec.patch else 1)
        self.fuse = nn.Sequential(
            nn.Conv2d(in_channels + maps, in_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(in_channels),
            nn.ReLU(inplace=True),
        )

    def similarity_maps(self, features: torch.Tensor, image: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, k or 2k, h, w)`` match strengths of the sorted best similarities (learned, then patch)."""
        batch, _, height, width = features.shape
        emb = nnf.normalize(self.embed(features).flatten(2).float(), dim=1)
        cells = grid_positions(height, width, 1.0, 0.0, features.device)
        s = self.spec
        maps = [topk_similarity(emb, [emb], cells, cells, s.radius + 1, s.topk)]
        if s.patch:
            if image is None:
                raise ValueError("the patch branch of self-correlation needs the input image")
            with torch.no_grad():
                patch = patch_similarity(image, s.stride, s.topk, s.radius, s.mirror, s.patch_size, s.patch_step)
            if patch.shape[1] != height * width:
                raise ValueError(f"patch grid of {patch.shape[1]} cells != feature grid {height}x{width}")
            maps.append(patch)
        top = match_strength(torch.cat(maps, dim=2))
        return top.transpose(1, 2).reshape(batch, -1, height, width)

    def forward(self, features: torch.Tensor, image: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Features with the similarity evidence fused in, and the evidence maps themselves."""
        sims = self.similarity_maps(features, image).to(features.dtype)
        return features + self.fuse(torch.cat([features, sims], dim=1)), sims


class SelfCorrelationNet(nn.Module):
    """An smp segmentation model whose encoder features at one stride pass through :class:`SelfCorrelation`.

    The evidence maps also reach the output directly: a 1x1 convolution of them, upsampled, is added
    to the decoder's logits. It starts from the prior "an exact repeat elsewhere is forged" (weight
    ``EXACT_REPEAT_LOGIT`` on the best patch match, everything else zero), which training refines
    while the decoder learns the rest.
    """

    def __init__(self, base: nn.Module, spec: CorrSpec):
        super().__init__()
        stride, topk, patch = spec.stride, spec.topk, spec.patch
        level = int(math.log2(stride)) if stride > 0 else -1
        channels = list(base.encoder.out_channels)
        if 2**level != stride or not 0 < level < len(channels) or channels[level] == 0:
            usable = [2**i for i, c in enumerate(channels) if i > 0 and c > 0]
            raise ValueError(f"self-correlation stride {stride} not available for this encoder (use one of {usable})")
        self.base, self.level = base, level
        self.corr = SelfCorrelation(channels[level], spec)
        self.shortcut = nn.Conv2d(topk * (2 if patch else 1), 1, 1)
        nn.init.zeros_(self.shortcut.weight)
        nn.init.zeros_(self.shortcut.bias)
        if patch:  # prior: an exact native-resolution repeat elsewhere is evidence of forgery
            with torch.no_grad():
                self.shortcut.weight[0, topk] = EXACT_REPEAT_LOGIT
                self.shortcut.bias.fill_(-EXACT_REPEAT_LOGIT / 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = list(self.base.encoder(x))
        features[self.level], sims = self.corr(features[self.level], x[:, :3])  # RGB only: not evidence channels
        logits = self.base.segmentation_head(self.base.decoder(features))
        direct = nnf.interpolate(self.shortcut(sims), size=logits.shape[-2:], mode="bilinear", align_corners=False)
        return logits + direct

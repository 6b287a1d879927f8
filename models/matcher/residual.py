"""Residuals between a copy and its source: a robust gain/offset fit, the image noise level, and the
same comparison at the figure's native resolution for copies found on a downscaled working image.

Downscaling a large figure resamples a copy and its source at different sampling phases, so on the
working image even an untouched copy differs from its source by interpolation error near the noise
level, and the noise test of verification cannot tell it from a look-alike. At the native resolution
an untouched copy is exact again; ``native_residual`` measures it there.
"""

from __future__ import annotations

import cv2
import numba
import numpy as np

TRIM_STEPS = 3  # refits of the robust gain/offset fit on its better-fitting half
MAX_SAMPLES = 200_000  # native pixels compared at most (an evenly spaced subset of larger regions)
SEARCH_SAMPLES = 4_000  # ... of which this many choose the whole-pixel offset
SEARCH_WORK_PX = 1.5  # offsets searched around the rescaled working transform (working pixels)
GREY_WEIGHTS = np.array([0.299, 0.587, 0.114])  # cv2.COLOR_RGB2GRAY, as the working grey image


def fit_residual(target: np.ndarray, source: np.ndarray) -> tuple[float, float, float]:
    """Median |target - (a * source + b)| after a robust gain/offset fit; returns (residual, a, b).

    Trimmed least squares: fit, keep the better-fitting half, refit, a few times, from two starts (least
    squares on all pixels, and the plain copy a = 1 with the median offset). A rim of pixels outside the
    copy (which the correlation window drags in) can pull a single fit far enough that its better half is
    no longer the copy; the best of the fits seen is returned. Compiled: residuals in float32 (the grey
    images' precision), means in float64.
    """
    if len(target) == 0:
        return 0.0, 1.0, 0.0
    residual, gain, offset = _fit_residual_compiled(
        np.ascontiguousarray(target, np.float32).ravel(), np.ascontiguousarray(source, np.float32).ravel(), TRIM_STEPS
    )
    return float(residual), float(gain), float(offset)


@numba.njit(cache=True, nogil=True)
def _fit_residual_compiled(target, source, trim_steps):
    n = len(target)
    best = (np.inf, 1.0, 0.0)
    residual = np.empty(n, np.float32)
    inliers = np.ones(n, np.bool_)
    for start in range(2):
        if start == 0:
            gain, offset = _gain_offset(target, source, inliers)
        else:
            gain, offset = 1.0, float(np.median(target - source))
        for step in range(trim_steps + 1):
            g, o = np.float32(gain), np.float32(offset)
            for i in range(n):
                residual[i] = abs(target[i] - (g * source[i] + o))
            median = float(np.median(residual))
            if median < best[0]:
                best = (median, gain, offset)
            if step == trim_steps or n < 8:
                break
            inliers_now = residual <= np.float32(median)
            gain, offset = _gain_offset(target, source, inliers_now)
    return best


@numba.njit(cache=True, nogil=True)
def _gain_offset(target, source, use):
    """Least-squares gain and offset (gain clipped to 0.25-4) over the pixels ``use`` marks (float64 sums)."""
    count = 0
    s_sum = 0.0
    t_sum = 0.0
    for i in range(len(target)):
        if use[i]:
            count += 1
            s_sum += source[i]
            t_sum += target[i]
    if count == 0:
        return 1.0, 0.0
    s_mean, t_mean = s_sum / count, t_sum / count
    s_var = 0.0
    cov = 0.0
    for i in range(len(target)):
        if use[i]:
            ds = source[i] - s_mean
            s_var += ds * ds
            cov += ds * (target[i] - t_mean)
    gain = cov / s_var if s_var / count > 1e-6 else 1.0
    gain = min(max(gain, 0.25), 4.0)
    return gain, t_mean - gain * s_mean


def noise_sigma(gray: np.ndarray, mask: np.ndarray) -> float:
    """Noise standard deviation of an image (Immerkær's Laplacian-difference estimator) over ``mask``."""
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    response = np.abs(cv2.filter2D(gray, cv2.CV_32F, kernel, borderType=cv2.BORDER_REFLECT))
    inner = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    if not inner.any():
        return 0.0
    return float(np.sqrt(np.pi / 2) / 6 * response[inner].mean())


def native_residual(
    native_rgb: np.ndarray, scale: float, affine: np.ndarray, region: np.ndarray
) -> tuple[float, float]:
    """(median residual, noise std) of a copy against its source at native resolution, in grey levels.

    ``affine`` maps source to copy in working coordinates and must not resample (a translation, flip
    or quarter turn); ``region`` marks copy pixels of the working image (``scale`` = working / native).
    The native translation is the working one rescaled and rounded, then searched ``SEARCH_WORK_PX``
    working pixels around (copies are moved by whole native pixels); the best fit counts.
    """
    h, w = native_rgb.shape[:2]
    ys, xs = np.nonzero(region)
    if len(ys) == 0:
        return float("inf"), 0.0
    y0, y1 = int(ys.min() / scale), min(h, int(np.ceil((ys.max() + 1) / scale)))
    x0, x1 = int(xs.min() / scale), min(w, int(np.ceil((xs.max() + 1) / scale)))
    inside = cv2.resize(
        region[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.uint8),
        (x1 - x0, y1 - y0),
        interpolation=cv2.INTER_NEAREST,
    ).astype(bool)
    qy, qx = np.nonzero(inside)
    step = max(1, int(np.ceil(len(qy) / MAX_SAMPLES)))
    copy_xy = np.stack([qx[::step] + x0, qy[::step] + y0], axis=1).astype(np.float64)
    linear = np.round(affine[:, :2])
    # native point P maps to working (P + 0.5) * scale - 0.5; the copy's centre fixes the native offset
    centre = copy_xy.mean(axis=0)
    work_centre = (centre + 0.5) * scale - 0.5
    work_source = np.linalg.solve(linear, work_centre - affine[:, 2])
    offset = np.round(centre - linear @ ((work_source + 0.5) / scale - 0.5))
    target = native_rgb[copy_xy[:, 1].astype(int), copy_xy[:, 0].astype(int)] @ GREY_WEIGHTS
    inverse = np.linalg.inv(linear)
    radius = int(np.ceil(SEARCH_WORK_PX / scale))  # the working transform is good to about a working pixel

    def residual_at(shift: np.ndarray, every: int) -> float:
        source_xy = np.round((copy_xy[::every] - shift) @ inverse.T).astype(int)
        ok = (source_xy[:, 0] >= 0) & (source_xy[:, 0] < w) & (source_xy[:, 1] >= 0) & (source_xy[:, 1] < h)
        if ok.sum() < max(8, ok.size // 2):
            return float("inf")
        source = native_rgb[source_xy[ok, 1], source_xy[ok, 0]] @ GREY_WEIGHTS
        return fit_residual(target[::every][ok], source)[0]

    # the best whole-pixel offset on a sparse subset, then the residual there on every sample
    every = max(1, len(copy_xy) // SEARCH_SAMPLES)
    shifts = [offset + np.array([dx, dy]) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)]
    best = min(shifts, key=lambda shift: residual_at(shift, every))
    grey = cv2.cvtColor(np.ascontiguousarray(native_rgb[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY).astype(np.float32)
    return residual_at(best, 1), noise_sigma(grey, inside)


JPEG_QUALITIES = tuple(range(50, 100))  # qualities the compression test tries
GHOST_SHARE = 0.5  # re-compression at the figure's own quality changes it this much less than qualities ...
GHOST_REACH = 3  # ... this many steps away (neighbouring qualities share most of their tables)
GHOST_SIDE = 256  # the test looks at the figure's most textured block of this side (on the 8 x 8 grid)


def jpeg_quality(gray: np.ndarray, mask: np.ndarray) -> int | None:
    """The quality the figure was saved at as JPEG (on its own 8 x 8 grid), or None when it shows no sign.

    A figure saved as JPEG at quality ``q`` and decoded is nearly a fixed point of JPEG at ``q`` on the same
    grid (a "JPEG ghost"): re-compressing it there changes it much less than a few qualities away. Only the
    most textured ``GHOST_SIDE`` block of the content (``mask``) is tried: cheap, and flat paper says nothing.
    """
    h, w = gray.shape
    side = min(GHOST_SIDE, h // 8 * 8, w // 8 * 8)
    if side < 32 or not mask.any():
        return None
    texture = cv2.boxFilter(np.abs(cv2.Laplacian(gray, cv2.CV_32F)) * mask, cv2.CV_32F, (side, side))
    ys, xs = np.mgrid[0 : h - side + 1 : 8, 0 : w - side + 1 : 8]
    centre = texture[ys + side // 2 - 1, xs + side // 2 - 1]
    k = int(np.argmax(centre))
    y0, x0 = int(ys.ravel()[k]), int(xs.ravel()[k])
    block = np.clip(np.round(gray[y0 : y0 + side, x0 : x0 + side]), 0, 255).astype(np.uint8)
    changes = np.array([float(np.abs(_recompress(block, q) - block).mean()) for q in JPEG_QUALITIES])
    best = None
    for k in range(GHOST_REACH, len(changes) - GHOST_REACH):
        window = changes[k - GHOST_REACH : k + GHOST_REACH + 1]
        far = min(changes[k - GHOST_REACH], changes[k + GHOST_REACH])
        ghost = changes[k] == window.min() and changes[k] < GHOST_SHARE * far
        if ghost and (best is None or changes[k] < changes[best]):
            best = k
    return None if best is None else JPEG_QUALITIES[best]


def compression_error(gray: np.ndarray, quality: int) -> np.ndarray:
    """Per-pixel |error| that JPEG at ``quality`` puts on content like the figure's (float32, its shape):
    the figure compressed on a grid shifted by half a block, where it is not a fixed point."""
    return np.abs(signed_compression_error(gray, quality))


def signed_compression_error(gray: np.ndarray, quality: int) -> np.ndarray:
    """The signed error (compressed - figure) behind ``compression_error``: a sample of the error field that
    JPEG at ``quality`` leaves on the figure's content, to be filtered like the figure itself."""
    image = np.clip(np.round(gray), 0, 255).astype(np.uint8)
    shifted = np.ascontiguousarray(image[4:, 4:])
    error = np.zeros(gray.shape, np.float32)
    error[4:, 4:] = _recompress(shifted, quality) - shifted
    return error


def colour_compression_error(rgb: np.ndarray, quality: int) -> np.ndarray:
    """Per-pixel, per-channel |error| (float32, ``(H, W, 3)``) that colour JPEG at ``quality`` (chroma stored at
    half resolution, as encoders do by default) puts on content like the figure's, on a grid shifted by half a
    block (see ``compression_error``). A channel of a JPEG'd copy strays from its source by about this much."""
    return np.abs(signed_colour_compression_error(rgb, quality))


def signed_colour_compression_error(rgb: np.ndarray, quality: int) -> np.ndarray:
    """The signed per-channel error (compressed - figure) behind ``colour_compression_error``."""
    shifted = cv2.cvtColor(np.ascontiguousarray(rgb[4:, 4:]), cv2.COLOR_RGB2BGR)
    _, buf = cv2.imencode(".jpg", shifted, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    error = np.zeros(rgb.shape, np.float32)
    error[4:, 4:] = (cv2.imdecode(buf, cv2.IMREAD_COLOR).astype(np.float32) - shifted)[:, :, ::-1]
    return error


def _recompress(image: np.ndarray, quality: int) -> np.ndarray:
    _, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE).astype(np.float32)

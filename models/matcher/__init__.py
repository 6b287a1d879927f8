"""The copy-move matcher: finds repetition inside a figure and returns whole operations.

``match_image(image, params)`` is the public API (see docs/ARCHITECTURE.md); ``params`` is the
``matcher`` section of params.yaml. Inference needs only numpy, scipy and OpenCV, plus the optional OCR
text detector of requirements-ocr.txt (``models.matcher.textboxes``; without it, colour-overlay masking only).
"""

from models.matcher.config import MatcherParams
from models.matcher.features import FEATURE_NAMES, prefixed_features
from models.matcher.pipeline import Link, MatchResult, match_image

__all__ = ["FEATURE_NAMES", "Link", "MatchResult", "MatcherParams", "match_image", "prefixed_features"]

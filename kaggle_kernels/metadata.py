"""Kaggle CLI metadata files: ``kernel-metadata.json`` and ``dataset-metadata.json``.

Field names and value types follow the Kaggle CLI's documentation (Kernel-Metadata and
Dataset-Metadata wiki pages): ids are ``username/slug``; the boolean kernel settings are written as the
strings ``"true"``/``"false"`` as in the documented examples.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

KERNEL_FIELDS = (
    "id",
    "title",
    "code_file",
    "language",
    "kernel_type",
    "is_private",
    "enable_gpu",
    "enable_tpu",
    "enable_internet",
    "dataset_sources",
    "competition_sources",
    "kernel_sources",
    "model_sources",
)
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,48}[a-z0-9]$")


def _flag(value: bool) -> str:
    return "true" if value else "false"


def slug_of(title: str) -> str:
    """Kaggle derives a kernel's slug from its title: lower case, dashes for spaces."""
    return re.sub(r"[^a-z0-9-]+", "-", title.lower()).strip("-")


def kernel_metadata(
    username: str,
    title: str,
    code_file: str,
    competition: str,
    datasets: Sequence[str],
    gpu: bool,
    private: bool = True,
) -> dict:
    """Metadata for a script kernel with internet off (required for code-competition submissions)."""
    slug = slug_of(title)
    if not SLUG.match(slug):
        raise ValueError(f"kernel title {title!r} gives an invalid slug {slug!r}")
    return {
        "id": f"{username}/{slug}",
        "title": title,
        "code_file": code_file,
        "language": "python",
        "kernel_type": "script",
        "is_private": _flag(private),
        "enable_gpu": _flag(gpu),
        "enable_tpu": "false",
        "enable_internet": "false",
        "dataset_sources": [f"{username}/{d}" for d in datasets],
        "competition_sources": [competition],
        "kernel_sources": [],
        "model_sources": [],
    }


def dataset_metadata(username: str, slug: str, title: str) -> dict:
    """Metadata for a private dataset version (``kaggle datasets create/version -p FOLDER``)."""
    if not SLUG.match(slug):
        raise ValueError(f"invalid dataset slug {slug!r}")
    return {"title": title, "id": f"{username}/{slug}", "licenses": [{"name": "CC0-1.0"}]}


def write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")


def check_kernel_metadata(payload: dict) -> list[str]:
    """Problems with a kernel-metadata.json payload (empty list = the CLI will accept it)."""
    problems = [f"unknown field {k!r}" for k in payload if k not in KERNEL_FIELDS]
    problems += [
        f"missing field {k!r}" for k in ("id", "title", "code_file", "language", "kernel_type") if k not in payload
    ]
    if "id" in payload and not re.match(r"^[^/\s]+/[a-z0-9-]+$", str(payload["id"])):
        problems.append(f"id must be 'username/slug', got {payload['id']!r}")
    if payload.get("kernel_type") not in ("script", "notebook"):
        problems.append("kernel_type must be 'script' or 'notebook'")
    for flag in ("is_private", "enable_gpu", "enable_tpu", "enable_internet"):
        if flag in payload and payload[flag] not in ("true", "false", True, False):
            problems.append(f"{flag} must be true or false")
    if "id" in payload and "title" in payload and str(payload["id"]).split("/")[-1] != slug_of(payload["title"]):
        problems.append("the id's slug must be the title lower-cased with dashes")
    return problems

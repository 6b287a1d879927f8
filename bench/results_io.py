"""Merge one benchmark section into bench/results.json and re-render bench/results.md."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

RESULTS_JSON = Path(__file__).parent / "results.json"
RESULTS_MD = Path(__file__).parent / "results.md"


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "describe", "--always", "--dirty"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def record(section: str, rows: list[dict[str, Any]], notes: str = "") -> None:
    """Store ``rows`` (one dict per measured line) under ``section`` and rewrite the markdown table."""
    results = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.is_file() else {}
    results[section] = {
        "measured": time.strftime("%Y-%m-%d %H:%M:%S"),
        "commit": _commit(),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "notes": notes,
        "rows": rows,
    }
    RESULTS_JSON.write_text(json.dumps(results, indent=2) + "\n")  # keeps each row's column order
    RESULTS_MD.write_text(render(results))


def render(results: dict[str, Any]) -> str:
    lines = ["# Benchmark results", "", "Written by `make bench` (`python -m bench.run`); do not edit by hand.", ""]
    for section, body in sorted(results.items()):
        lines += [f"## {section}", "", f"{body['measured']}, commit {body['commit']}, {body['machine']}", ""]
        if body.get("notes"):
            lines += [body["notes"], ""]
        rows = body["rows"]
        if rows:
            columns = list(dict.fromkeys(k for row in rows for k in row))
            lines.append("| " + " | ".join(columns) + " |")
            lines.append("|" + "---|" * len(columns))
            for row in rows:
                lines.append("| " + " | ".join(_fmt(row.get(c, "")) for c in columns) + " |")
            lines.append("")
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)

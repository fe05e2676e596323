"""Bench-only peers (dbt, Feast) live in their own virtual environments under bench/.work, never in ours."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

WORK = Path(__file__).resolve().parent / ".work"


def peer_python(name: str, requirements: list[str]) -> Path:
    """A venv named `name` with `requirements` installed (created once, reused after)."""
    root = WORK / name
    python = root / "bin" / "python"
    stamp = root / ".requirements"
    wanted = "\n".join(requirements)
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    print(f"creating the {name} environment (once): {' '.join(requirements)}", file=sys.stderr)
    venv.EnvBuilder(with_pip=True, clear=True).create(root)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *requirements], check=True)
    stamp.write_text(wanted)
    return python

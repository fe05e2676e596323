"""One error hierarchy for everything a user can get wrong, with where and what to do.

Library code raises these; only the CLI turns them into messages and exit codes.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .secrets import mask_secrets


@dataclass(frozen=True)
class Location:
    """A place in a user's file: 1-based line and column."""

    path: Path | str
    line: int | None = None
    col: int | None = None

    def __str__(self) -> str:
        text = str(self.path)
        if self.line is not None:
            text += f":{self.line}"
            if self.col is not None:
                text += f":{self.col}"
        return text


class SkewlessError(Exception):
    """Base error: a message, an optional location and snippet, and a hint on what to do."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        location: Location | None = None,
        snippet: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.location = location
        self.snippet = snippet
        self.hint = hint

    @property
    def headline(self) -> str:
        """Where and what, without snippet or hint (HTTP bodies carry the hint in a field of its own)."""
        return mask_secrets(f"{self.location}: {self.message}" if self.location else self.message)

    def __str__(self) -> str:
        """What every output shows (CLI, logs, run_results.json, HTTP bodies): secrets masked."""
        parts = [f"{self.location}: {self.message}" if self.location else self.message]
        if self.snippet:
            parts.append(mask_secrets(self.snippet, assignments=True))
        if self.hint:
            parts.append(f"hint: {self.hint}")
        return mask_secrets("\n".join(parts))


class ProjectError(SkewlessError):
    """A project file (YAML, profile, layout) is missing or wrong."""


class CompileError(SkewlessError):
    """A model cannot be rendered, parsed or validated."""


class SelectionError(SkewlessError):
    """A --select/--exclude expression matches nothing or is malformed."""


class AdapterError(SkewlessError):
    """The warehouse or online store refused or failed; the run failed, not the project."""

    exit_code = 1


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A 'did you mean' hint for a misspelt name, or None when nothing is close."""
    close = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6)
    if not close:
        return None
    return "did you mean " + " or ".join(repr(c) for c in close) + "?"


def snippet_at(text: str, line: int, col: int | None = None, context: int = 1) -> str:
    """A few numbered lines of `text` around `line`, with a caret under `col`."""
    lines = text.splitlines()
    if not lines or line < 1:
        return ""
    line = min(line, len(lines))
    first, last = max(1, line - context), min(len(lines), line + context)
    width = len(str(last))
    out = []
    for number in range(first, last + 1):
        out.append(f"{number:>{width}} | {lines[number - 1]}")
        if number == line and col is not None:
            out.append(" " * width + " | " + " " * max(0, col - 1) + "^")
    return "\n".join(out)

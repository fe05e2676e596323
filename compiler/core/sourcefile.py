"""Text from outside is UTF-8: a user's file read as text (a leading byte-order mark allowed), or an error at the
first byte that is not, so that no file of a project reaches a parser, or a message, as anything but text; and the
check for text Python holds that is not (bytes kept as lone surrogates: arguments, environment variables)."""

from __future__ import annotations

from pathlib import Path

from .errors import Location, ProjectError, snippet_at


def read_source(path: Path) -> str:
    """The file's text, read as UTF-8 (a leading BOM dropped); a byte that is not UTF-8 is the user's error,
    located at its line and column, not a UnicodeDecodeError from wherever the text is first used."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        before = raw[:error.start].decode("utf-8")  # valid up to the bad byte
        line = before.count("\n") + 1
        col = len(before) - (before.rfind("\n") + 1) + 1
        raise ProjectError(
            f"the file is not UTF-8 text: byte 0x{raw[error.start]:02x} here",
            location=Location(path, line, col),
            snippet=snippet_at(raw.decode("utf-8", errors="backslashreplace"), line, col),
            hint="save the file as UTF-8 (an editor's 'encoding' setting), or remove the byte",
        ) from None
    return text[1:] if text.startswith("\ufeff") else text


def is_utf8(value: str | bytes) -> bool:
    """Bytes that decode as UTF-8, or a str that encodes as it (one holding a lone surrogate does not)."""
    try:
        value.decode() if isinstance(value, bytes) else value.encode()
    except UnicodeError:
        return False
    return True

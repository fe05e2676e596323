"""A fuzzer for user mistakes: valid projects mutated (a line deleted or doubled, tokens swapped or replaced, a
type changed) must give a located user error or compile, never an internal error or a traceback."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skewless.cli.main import cli

EXAMPLE = Path(__file__).resolve().parent.parent / "example_project"
# Every file of the project a user writes (models, macros, data tests, YAML), the streamed window_agg model too.
FILES = sorted(str(path.relative_to(EXAMPLE)) for path in EXAMPLE.rglob("*")
               if path.suffix in (".sql", ".yml") and "target" not in path.relative_to(EXAMPLE).parts)
TOKENS = ["{{", "}}", "{%", "%}", "(", ")", ",", "'", '"', ":", "-", "[", "]", "select", "from", "ref", "true",
          "null", "1e999", "\u00e9", "\t", "*", "as", "config(", "ttl='0s'", "''"]
RETYPED = ["[1, 2]", "{a: 1}", "{'a': 1}", "true", "42", "-1", "null", "none", "''", "3.5", "'x'", "[]"]
INTERNALS = re.compile(r"Traceback|Internal error|sqlglot\.|TokenType|<class |jinja2\.|skewless\.\w+\.")


@st.composite
def mutation(draw):  # noqa: ANN001, ANN201
    name = draw(st.sampled_from(FILES))
    lines = (EXAMPLE / name).read_text(encoding="utf-8").splitlines()
    index = draw(st.integers(0, max(0, len(lines) - 1)))
    kind = draw(st.sampled_from(["delete", "double", "insert", "replace", "truncate", "swap", "retype", "bytes"]))
    token = draw(st.sampled_from(TOKENS))
    if kind == "delete" and lines:
        del lines[index]
    elif kind == "double" and lines:
        lines.insert(index, lines[index])
    elif kind == "insert":
        line = lines[index] if lines else ""
        at = draw(st.integers(0, len(line)))
        lines[index:index + 1] = [line[:at] + token + line[at:]]
    elif kind == "replace" and lines:
        words = lines[index].split(" ")
        position = draw(st.integers(0, len(words) - 1))
        words[position] = token
        lines[index] = " ".join(words)
    elif kind == "swap" and lines:
        words = lines[index].split(" ")
        if len(words) > 1:
            position = draw(st.integers(0, len(words) - 2))
            words[position], words[position + 1] = words[position + 1], words[position]
        lines[index] = " ".join(words)
    elif kind == "retype" and lines:
        # A value of another type: YAML `key: value` and config `key=value` alike.
        value = draw(st.sampled_from(RETYPED))
        lines[index] = re.sub(r"(:\s+|=)([^,\s{}()\[\]][^,{}()]*|\[[^\]]*\]|'[^']*')", lambda m: m.group(1) + value,
                              lines[index], count=1)
    elif kind == "truncate":
        lines = lines[:index]
    data = ("\n".join(lines) + "\n").encode()
    if kind == "bytes":  # bytes that are not UTF-8: a Latin-1 editor's é, a cut sequence, an encoded surrogate
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from([b"\xe9", b"\xff", b"\xc3", b"\xed\xa0\x80"])) + data[at:]
    return name, data


@settings(max_examples=int(os.environ.get("SKEWLESS_FUZZ_EXAMPLES", "600")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(change=mutation())
def test_a_mutated_project_gives_a_user_error_never_an_internal_one(tmp_path_factory, change):
    root = tmp_path_factory.mktemp("fuzz") / "project"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("target", "__pycache__"))
    name, text = change
    (root / name).write_bytes(text)
    result = CliRunner().invoke(cli, ["compile", "--project-dir", str(root)])
    assert result.exit_code in (0, 2), (name, text, result.output)
    assert not INTERNALS.search(result.output), (name, text, result.output)
    if result.exit_code == 2:
        assert "Error:" in result.output
    try:
        text.decode()
    except UnicodeDecodeError:
        assert re.search(re.escape(name) + r":\d+:\d+: the file is not UTF-8 text", result.output), result.output

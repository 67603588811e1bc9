"""The guides show ``mseplug score``'s real output.

Two forms are checked:

- in ``docs/guides/cli.md``, a ```` ```bash ```` block that runs ``mseplug score``
  followed directly by a ```` ```text ```` block: the block's commands run in order in
  one temporary folder (``mseplug`` is this Python's ``python -m mseplug``) and the
  text is their stdout and stderr, exactly;
- in the guides' Python blocks, a line ``print(out)  # EXPECTED`` whose EXPECTED is
  a score's output (starts with ``mseplug score`` or ``{"rows"``): the page runs with
  that line checking ``out`` against EXPECTED (as JSON when it is JSON, numbers to
  1e-9; else as text where ``...`` stands for anything).
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUIDES = ROOT / "docs" / "guides"
BLOCK = re.compile(r"^```(?P<lang>\w*)[^\n]*\n(?P<code>.*?)^```[ \t]*$", re.M | re.S)
PRINTED = re.compile(r"^(?P<indent>[ \t]*)print\((?P<expr>.+)\)[ \t]+"
                     r"# (?P<expected>(mseplug score|\{\"rows\").*)$", re.M)

pytest.importorskip("pyarrow")


def command_outputs(page: Path) -> list[tuple[str, str]]:
    """``(commands, output)`` of each bash block running ``mseplug score`` followed by a text
    block (only blank lines between)."""
    text = page.read_text(encoding="utf-8")
    blocks = list(BLOCK.finditer(text))
    pairs = []
    for block, after in zip(blocks, blocks[1:]):
        between = text[block.end():after.start()]
        if (block["lang"] == "bash" and after["lang"] == "text" and not between.strip()
                and "mseplug score" in block["code"]):
            pairs.append((block["code"], after["code"]))
    return pairs


def test_the_cli_guide_shows_the_commands_real_output(tmp_path: Path) -> None:
    pairs = command_outputs(GUIDES / "cli.md")
    assert len(pairs) >= 3, "the guide's samples of mseplug score's output are gone"
    prelude = f'exec 2>&1\nmseplug() {{ {sys.executable!r} -m mseplug "$@"; }}\n'
    for commands, shown in pairs:
        result = subprocess.run(["bash", "-c", prelude + commands], cwd=tmp_path,
                                capture_output=True, text=True, timeout=120)
        assert result.stdout == shown, (
            f"docs/guides/cli.md shows, for\n{commands}\n{shown}\nbut it prints\n{result.stdout}")


CHECK = textwrap.dedent("""
    def _shows(got, expected):
        import doctest, json, math

        def same(got, wanted):
            if isinstance(wanted, dict):
                return (isinstance(got, dict) and list(got) == list(wanted)
                        and all(same(got[k], v) for k, v in wanted.items()))
            if isinstance(wanted, float) and isinstance(got, (int, float)):
                return math.isclose(got, wanted, rel_tol=1e-9)
            return got == wanted

        try:
            wanted = json.loads(expected)
        except ValueError:
            ok = doctest._ellipsis_match(expected.strip(), str(got).strip())
        else:
            ok = same(json.loads(got), wanted)
        assert ok, f"the guide shows {expected!r} but the output is {got!r}"
""")


_CHECKS: dict[str, Any] = {}
exec(CHECK, _CHECKS)  # the function the pages run, tested here


def test_the_matching_rules() -> None:
    shows = _CHECKS["_shows"]
    shows("mseplug score: error: a, b, c\n", "mseplug score: error: a, ...")
    shows('{"rows": 4, "m": {"mse": 625.0350000000001}}', '{"rows": 4, "m": {"mse": 625.035}}')
    for got, expected in (("mseplug score: error: x", "mseplug score: error: a, ..."),
                          ('{"rows": 4, "m": {"mse": 625.1}}', '{"rows": 4, "m": {"mse": 625.035}}'),
                          ('{"rows": 4, "m": {"mse": 1.0}, "x": 1}', '{"rows": 4, "m": {"mse": 1.0}}')):
        with pytest.raises(AssertionError):
            shows(got, expected)


@pytest.mark.parametrize("name", ["cli.md", "custom-loss.md"])
def test_score_output_printed_in_a_guides_python_is_real(tmp_path: Path, name: str) -> None:
    text = (GUIDES / name).read_text(encoding="utf-8")
    modules = re.findall(r"<!--\s*requires:\s*([\w.,\s-]+?)\s*-->", text)
    for module in ",".join(modules).split(","):
        if module.strip():
            pytest.importorskip(module.strip())
    code = "".join(block["code"] for block in BLOCK.finditer(text) if block["lang"] == "python")
    checked, count = PRINTED.subn(
        lambda m: f"{m['indent']}_shows({m['expr']}, {m['expected']!r})", code)
    assert count >= 1, f"no printed output of mseplug score in {name}"
    result = subprocess.run([sys.executable, "-c", CHECK + checked], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"docs/guides/{name}:\n{result.stderr[-3000:]}"

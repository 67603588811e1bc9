"""The documentation's code runs: every page's Python blocks, as one script per page.

Convention (for every page in ``docs/`` and for ``README.md``):

- a page's fenced ```` ```python ```` blocks are concatenated in order and run as
  ONE standalone script in a fresh subprocess whose working directory is an
  empty temporary folder, so later blocks may use names from earlier ones;
- blocks in any other language (``bash``, ``text``, ``console``, ``toml``) are
  shown, never run;
- a page that needs optional modules says so in an HTML comment, for instance
  ``<!-- requires: ray, pyspark -->``; it is skipped when one is not installed.

A failure names the page and the line of the page that raised. The site
itself (links, anchors, API reference, figures) is built with ``--strict`` by
``make docs-site``, which ``make test`` runs after this suite (``make docs``
also draws the benchmark charts).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*\{?\.?(?P<lang>[\w+-]*)[^\n]*$")
REQUIRES = re.compile(r"<!--\s*requires:\s*(?P<modules>[\w.,\s-]+?)\s*-->")


@dataclass(frozen=True)
class Block:
    """One fenced code block: its language, first line in the page (1-based), and code."""

    lang: str
    line: int
    code: str


def blocks(text: str) -> list[Block]:
    """The fenced code blocks of a Markdown page, in order (indented fences too)."""
    found: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not (lines[j].strip().startswith(fence)
                                      and lines[j].strip().strip(fence[0]) == ""):
            line = lines[j]
            body.append(line[len(indent):] if line.startswith(indent) else line.lstrip())
            j += 1
        found.append(Block(opening["lang"].lower(), i + 2, "\n".join(body) + "\n"))
        i = j + 1
    return found


def script(text: str) -> tuple[str, list[tuple[int, int]]]:
    """The page's Python blocks as one script, and (script line, page line) of each block."""
    parts, starts, line = [], [], 1
    for block in blocks(text):
        if block.lang not in ("python", "py", "python3"):
            continue
        starts.append((line, block.line))
        parts.append(block.code)
        line += block.code.count("\n")
    return "".join(parts), starts


def required_modules(text: str) -> list[str]:
    """Modules named by ``<!-- requires: a, b -->`` comments of a page."""
    return [name.strip() for match in REQUIRES.finditer(text)
            for name in match["modules"].split(",") if name.strip()]


def page_line(starts: list[tuple[int, int]], script_line: int) -> int:
    """The page line of a script line."""
    block_script, block_page = max((s for s in starts if s[0] <= script_line), default=(1, 1))
    return block_page + script_line - block_script


def pages() -> list[Path]:
    """README.md and every page of docs/ (not the generated includes)."""
    found = sorted(p for p in DOCS.rglob("*.md") if "generated" not in p.relative_to(DOCS).parts)
    return [ROOT / "README.md", *found]


def pages_with_code() -> list[Path]:
    return [p for p in pages() if script(p.read_text(encoding="utf-8"))[0].strip()]


def _id(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


# -- the runner's own rules, checked on small pages --------------------------------------------
def test_blocks_of_a_page_run_as_one_script_in_order() -> None:
    page = ("# Title\n\n```python\nx = 1\n```\n\ntext\n\n```bash\nrm -rf /\n```\n\n"
            "!!! note\n    ```python\n    y = x + 1\n    ```\n\n```text\n>>> no\n```\n")
    code, starts = script(page)
    assert code == "x = 1\ny = x + 1\n"
    assert starts == [(1, 4), (2, 15)]
    assert [b.lang for b in blocks(page)] == ["python", "bash", "python", "text"]
    assert page_line(starts, 2) == 15


def test_requires_comment_lists_modules() -> None:
    assert required_modules("<!-- requires: ray, pyspark -->\n<!--requires: dask.distributed-->") == [
        "ray", "pyspark", "dask.distributed"]
    assert required_modules("<!-- a comment -->") == []


def test_every_page_with_python_blocks_is_complete_python() -> None:
    """Each page's script parses: a block cut mid-statement fails here, with the page's name."""
    for path in pages():
        code, _ = script(path.read_text(encoding="utf-8"))
        try:
            ast.parse(code, filename=_id(path))
        except SyntaxError as error:
            pytest.fail(f"{_id(path)}: the Python blocks do not parse: {error}")


def test_no_file_refers_to_documents_outside_the_repository() -> None:
    """The repository's own docs are the contract; users never have the developers' notes."""
    outside = re.compile("DESIGN" + r"\.md|\.\./" + "shared")
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    offenders = []
    for name in tracked.stdout.splitlines():
        path = ROOT / name
        if path.is_file() and path.suffix not in (".png", ".npy", ".parquet"):
            text = path.read_text(encoding="utf-8", errors="ignore")
            offenders += [f"{name}:{text.count(chr(10), 0, m.start()) + 1}"
                          for m in outside.finditer(text)]
    assert not offenders, f"files refer to documents outside the repository: {offenders}"


# -- the API reference ---------------------------------------------------------------------------
PUBLIC_MODULES = ("mseplug", "mseplug.torch", "mseplug.sklearn")


def test_every_public_name_is_documented_in_the_api_reference() -> None:
    """Each name in a public module's ``__all__`` has a docstring and a place in docs/reference/.

    mkdocstrings renders what griffe reads from the source, plus what the site's
    griffe extension adds (the built-in losses' functions, built from the
    registry at import), so the check reads the same way; the pages are read
    after the site's hook has written the registry's directives into them.
    """
    griffe = pytest.importorskip("griffe")
    extensions = griffe.load_extensions(f"{DOCS / 'griffe_registry.py'}:RegisteredLosses")
    package = griffe.load("mseplug", search_paths=[str(ROOT)], resolve_aliases=True,
                          extensions=extensions)
    hooks = _docs_module("hooks")
    pages = "\n".join(hooks.on_page_markdown(p.read_text(encoding="utf-8"))
                      for p in (DOCS / "reference").glob("*.md"))
    directives = set(re.findall(r"^:::[ \t]*([\w.]+)", pages, flags=re.MULTILINE))
    problems = []
    for module_name in PUBLIC_MODULES:
        module = package if module_name == "mseplug" else package[module_name.split(".", 1)[1]]
        assert module.exports, f"{module_name} has no __all__"
        for name in module.exports:
            assert isinstance(name, str), f"{module_name}.__all__ holds {name!r}, not a name"
            path = f"{module_name}.{name}"
            if path not in directives and module_name not in directives - {"mseplug"}:
                problems.append(f"{path}: add '::: {path}' to a page of docs/reference/")
            docstring = module[name].docstring
            if docstring is None or not docstring.value.strip():
                problems.append(f"{path}: no docstring")
    assert not problems, "\n".join(problems)


# -- the site's build helpers ---------------------------------------------------------------------
def _docs_module(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"docs_{name}", DOCS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _bench_json(scaling: bool) -> dict[str, Any]:
    """A ``mseplug bench --json`` document in the shared format, with made-up timings."""
    rows = [{"backend": "numpy", "case": f"mse n=1e6 {dtype}", "anchor": "np.mean((a-b)**2)",
             "mseplug_s": 1e-3, "anchor_s": ratio * 1e-3, "ratio": ratio, "goal": ">= 3",
             "goal_value": 3.0, "met": ratio >= 3}
            for dtype, ratio in (("float32", 4.5), ("float64", 2.0))]
    rows.append({"backend": "torch", "case": "mse forward n=8", "anchor": "F.mse_loss",
                 "mseplug_s": 2e-6, "anchor_s": 2e-6, "ratio": 1.0, "goal": "report",
                 "goal_value": None, "met": None})
    points = [{"backend": "numpy", "loss": "mse", "n": n, "dtype": "float64",
               "mseplug_s": 1e-6 + n * 1e-9, "anchor": "np.mean((a-b)**2)",
               "anchor_s": 2e-6 + n * 3e-9} for n in (10, 10**3, 10**5, 10**8)]
    return {"mseplug": "0.1.0", "machine": {"python": "3.11", "cpu_count": 2, "cpu": "a CPU"},
            "date": "2026-01-01", "repeat": 5, "rows": rows, "scaling": points if scaling else []}


def test_benchmark_charts_follow_the_shared_json_format(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("matplotlib")
    figures = _docs_module("make_figures")
    monkeypatch.setattr(figures, "OUT", tmp_path)
    document = json.dumps(_bench_json(scaling=True))
    data = figures.parse_bench("a table printed first\n" + document)  # JSON after other output
    assert data == json.loads(document)
    page = figures.benchmark_page(data, "unused")
    assert "![Ratios against each anchor](generated/bench-ratios.png)" in page
    assert "![Time against n](generated/bench-scaling.png)" in page
    assert (tmp_path / "bench-ratios.png").stat().st_size > 0
    assert (tmp_path / "bench-scaling.png").stat().st_size > 0

    (tmp_path / "bench-scaling.png").unlink()
    page = figures.benchmark_page(_bench_json(scaling=False), "unused")  # "scaling" still empty
    assert "Time against n: no data" in page and not (tmp_path / "bench-scaling.png").exists()
    note = figures.benchmark_page(None, "`mseplug bench` has no --json.")
    assert note.startswith('!!! note') and "has no --json" in note and "![" not in note
    assert figures.parse_bench(document + "\nand a table after it\n") == data
    assert figures.parse_bench("no json here") is None
    assert figures.parse_bench('{"no rows": 1}') is None


# -- speed goals and claims: one source --------------------------------------------------------
#: "at least 3x faster", "within 1.1x", "at most 2x slower", "at least 90% of", ">= 0.97 of",
#: "no slower than": a goal stated in words; its number must be one the bench applies.
GOAL_PHRASE = re.compile(
    r"(?P<words>at\s+least|at\s+most|within|no\s+less\s+than|≥|>=)\s*(?P<number>\d+(?:\.\d+)?)\s*"
    r"(?P<unit>×|x\b|times\b|%|of\b)|(?P<same>no\s+slower\b)", re.IGNORECASE)
#: "1.4x faster", "2.95× slower": a measured speed written by hand instead of generated.
HAND_MEASURED = re.compile(r"\d+(?:\.\d+)?\s*(?:×|x\b)\s*(?:faster|slower)", re.IGNORECASE)
GOAL_WORDS = re.compile(r"(at\s+least|at\s+most|within|no\s+less\s+than|≥|>=)\s*$", re.IGNORECASE)


def stated_goals(text: str) -> list[tuple[int, str, float]]:
    """(line, phrase, ratio) of each speed goal stated in ``text``; ratio = anchor / mseplug time."""
    found = []
    for match in GOAL_PHRASE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        if match["same"]:
            found.append((line, match[0], 1.0))
            continue
        number, unit = float(match["number"]), match["unit"].lower()
        words = " ".join(match["words"].lower().split())
        if unit == "%":
            ratio = number / 100
        elif unit == "of":
            ratio = number
        elif words in ("within", "at most"):  # "within 1.1x", "at most 2x slower"
            ratio = 1 / number
        else:
            ratio = number
        found.append((line, match[0], ratio))
    return found


def _goal_pages() -> list[Path]:
    """Every page a reader sees, less the changelog (a record of past releases)."""
    return [p for p in pages() if p.name != "changelog.md"]


def test_the_goal_finder_reads_the_ways_a_goal_is_written() -> None:
    text = ("at least 2.5× faster\nwithin 1.05x of jnp\nat least 60% of the bandwidth\n"
            "no slower than F.mse_loss\n>= 0.97 of the expression\nat most 2x slower\n"
            "accumulated in at least float32, at least 3 rows")
    assert [(line, round(ratio, 4)) for line, _, ratio in stated_goals(text)] == [
        (1, 2.5), (2, round(1 / 1.05, 4)), (3, 0.6), (4, 1.0), (5, 0.97), (6, 0.5)]
    assert HAND_MEASURED.search("| 1.40× faster |") and not HAND_MEASURED.search("3x more rows")


def test_no_page_states_a_speed_goal_the_bench_does_not_apply() -> None:
    """Goals on any page are the bench's own (:data:`mseplug._bench_cases.GOALS`), and measured
    speeds come from the generated tables, never typed into a page."""
    from mseplug.cli.bench_cases import GOALS

    applied = [goal.value for goal in GOALS if goal.measure == "speed"]
    problems = []
    for path in _goal_pages():
        text = path.read_text(encoding="utf-8")
        for line, phrase, ratio in stated_goals(text):
            if not any(abs(ratio - value) <= 1e-3 * value for value in applied):
                problems.append(f"{_id(path)}:{line}: {phrase!r} is not a goal mseplug bench "
                                f"applies ({sorted(set(round(v, 3) for v in applied))})")
        for match in HAND_MEASURED.finditer(text):
            if GOAL_WORDS.search(text[max(0, match.start() - 12):match.start()]):
                continue  # "at least 3x faster": a goal, checked above
            problems.append(f"{_id(path)}:{text.count(chr(10), 0, match.start()) + 1}: "
                            f"{match[0]!r}: a measured speed typed by hand; include a generated "
                            "table (docs/make_figures.py) instead")
    assert not problems, "\n".join(problems)


def test_the_goals_table_is_generated_from_the_bench_goals(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("matplotlib")
    from mseplug.cli.bench_cases import GOALS

    figures = _docs_module("make_figures")
    table = figures.goals_table()
    assert table.count("\n") == len(GOALS) + 2
    for goal in GOALS:
        assert f"| {goal.words} |" in table and goal.case in table
    assert '--8<-- "docs/generated/goals.md"' in (DOCS / "benchmarks.md").read_text()


def test_merged_bench_runs_take_each_rows_median() -> None:
    pytest.importorskip("matplotlib")
    figures = _docs_module("make_figures")
    runs = []
    for factor in (1.0, 3.0, 2.0):
        report = _bench_json(scaling=True)
        for row in report["rows"]:
            row["anchor_s"] *= factor
        runs.append(report)
    merged = figures.merge_runs(runs)
    assert merged["runs"] == 3
    first = merged["rows"][0]
    assert first["ratio"] == pytest.approx(2 * 4.5) and first["met"] is True
    assert first["ratios"] == pytest.approx([4.5, 13.5, 9.0])
    assert len(merged["scaling"]) == len(runs[0]["scaling"])


TEST_LINK = re.compile(
    r"\]\((?P<path>generated/tests/(?P<file>(?:\w+/)?test_\w+\.py)) \"(?P<test>test_\w+)\"\)")


def test_each_yes_of_the_comparison_links_a_test_that_exists() -> None:
    """Every "yes" of mseplug's column links a test file and names a test defined in it."""
    text = (DOCS / "comparison.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| **")]
    assert len(rows) >= 9
    for row in rows:
        ours = row.split("|")[2]
        assert ours.strip().startswith("[yes]("), f"mseplug's cell has no linked yes: {row[:60]}"
    links = TEST_LINK.findall(text)
    assert len(links) >= len(rows)
    for _, name, test in links:
        source = (ROOT / "tests" / name).read_text(encoding="utf-8")
        assert re.search(rf"^def {test}\(", source, flags=re.MULTILINE), f"{name} has no {test}"
        assert f"tests/{name}::{test}" in text, f"{name}::{test} is missing from the list of tests"


# -- every page ----------------------------------------------------------------------------------
def page_cases() -> list[Any]:
    """Each page with code; the distributed guides (a local Spark, Ray, Dask cluster or gloo
    ranks, started by the page) are marked ``slow``."""
    return [pytest.param(p, marks=pytest.mark.slow) if p.name.startswith("distributed-") else p
            for p in pages_with_code()]


@pytest.mark.parametrize("path", page_cases(), ids=_id)
def test_page_code_runs(path: Path, tmp_path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    code, starts = script(text)
    missing = [m for m in required_modules(text) if importlib.util.find_spec(m.split(".")[0]) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    program = tmp_path / "page.py"
    program.write_text(code, encoding="utf-8")
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0"}
    env.pop("PYTHONPATH", None)
    result = subprocess.run([sys.executable, str(program)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        lines = [int(n) for n in re.findall(r'File ".*page\.py", line (\d+)', result.stderr)]
        where = f" (raised at line {page_line(starts, lines[-1])})" if lines else ""
        pytest.fail(f"{_id(path)}{where}: its Python blocks failed\n{result.stderr[-4000:]}")

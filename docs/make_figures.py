"""Draw the documentation's figures from mseplug itself; ``make docs`` runs this before MkDocs.

Everything lands in ``docs/generated/`` (ignored by git, rebuilt every time):

- ``loss-<name>.png`` and ``losses.png``: every registered loss and its
  derivative against the residual, computed by ``mseplug.value_and_grad`` on
  one sample at a time (so a root loss such as RMSE shows as ``|r|``);
- ``outlier.png``: one outlier's effect on MSE and on MAE;
- ``bench-ratios.png`` and ``bench-scaling.png``: the benchmark charts, from
  the JSON of ``mseplug bench --json`` (``--bench-json FILE``, or ``--bench``
  to run ``mseplug bench --quick --json`` now). Without benchmark data they
  are skipped with a note, and ``benchmarks.md`` (included by the
  Benchmarks page) says so instead of showing them.

Usage: ``python docs/make_figures.py [--bench | --bench-json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import mseplug

HERE = Path(__file__).resolve().parent
OUT = HERE / "generated"
RESIDUALS = np.linspace(-3.0, 3.0, 241)
STYLE = {"figure.dpi": 110, "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False,
         "axes.spines.right": False, "font.size": 9}


def loss_curve(name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The loss of one sample and its derivative at each residual ``r = y_pred - y_true``."""
    values, slopes = [], []
    for r in RESIDUALS:
        try:
            value, slope = mseplug.value_and_grad(name, np.zeros(1), np.array([r]))
            slopes.append(float(slope[0]))
        except TypeError:  # a loss without a derivative has no NumPy gradient
            value = mseplug.get_loss(name)(np.zeros(1), np.array([r]))
        values.append(float(value))
    return np.array(values), (np.array(slopes) if len(slopes) == len(values) else None)


def _draw_loss(ax: Any, name: str) -> None:
    values, slopes = loss_curve(name)
    ax.plot(RESIDUALS, values, color="C0", label="loss")
    if slopes is not None:
        ax.plot(RESIDUALS, slopes, color="C3", linestyle="--", label="derivative")
    ax.axhline(0.0, color="0.5", linewidth=0.6)
    ax.axvline(0.0, color="0.5", linewidth=0.6)
    ax.set_title(f"{name} (defaults)")
    ax.set_xlabel("residual r = ŷ − y")
    ax.set_ylim(-3.2, 6.2)
    ax.legend(loc="upper center", frameon=False)


def loss_figures() -> list[Path]:
    names = mseplug.losses()
    written = []
    for name in names:
        fig, ax = plt.subplots(figsize=(4.2, 3.0))
        _draw_loss(ax, name)
        written.append(_save(fig, f"loss-{name}.png"))
    columns = 3
    rows = math.ceil(len(names) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.0 * columns, 2.9 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        _draw_loss(ax, name)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    written.append(_save(fig, "losses.png"))
    return written


def outlier_figure() -> Path:
    """Left: the loss as one prediction's error grows. Right: the best constant prediction."""
    rng = np.random.default_rng(7)
    y = rng.normal(10.0, 1.0, size=19)
    sizes = np.linspace(0.0, 30.0, 61)
    fig, (grow, best) = plt.subplots(1, 2, figsize=(10.0, 3.4))
    mse, mae = [], []
    for size in sizes:
        truth = np.append(y, 10.0)
        pred = np.append(y + 0.5, 10.0 + size)  # 19 small errors of 0.5, one error of `size`
        mse.append(float(mseplug.mse(truth, pred)))
        mae.append(float(mseplug.mae(truth, pred)))
    grow.plot(sizes, np.array(mse) / mse[0], label="MSE")
    grow.plot(sizes, np.array(mae) / mae[0], label="MAE")
    grow.set_xlabel("error of one prediction out of 20 (the others: 0.5)")
    grow.set_ylabel("loss / loss without the outlier")
    grow.set_yscale("log")
    grow.set_title("One bad prediction")
    grow.legend(frameon=False)

    constants = np.linspace(8.0, 14.0, 241)
    outlier = np.append(y, 60.0)
    for data, style, label in ((y, ":", "without"), (outlier, "-", "with")):
        for name, color in (("mse", "C0"), ("mae", "C1")):
            loss = mseplug.get_loss(name)
            curve = [float(loss(data, np.full_like(data, c))) for c in constants]
            best.axvline(constants[int(np.argmin(curve))], color=color, linestyle=style,
                         label=f"{name.upper()}, {label} an outlier at 60")
    best.plot(y, np.full_like(y, 0.5), "k|", markersize=14)
    best.set_ylim(0.0, 1.25)
    best.set_xlabel("the constant prediction c that minimises the loss (ticks: the data)")
    best.set_yticks([])
    best.set_title("Best constant: mean (MSE) vs median (MAE)")
    best.legend(frameon=False, fontsize=7, ncol=2, loc="upper center", bbox_to_anchor=(0.5, 1.0))
    return _save(fig, "outlier.png")


def _save(fig: Any, name: str) -> Path:
    path = OUT / name
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
    return path


# -- benchmarks ---------------------------------------------------------------------------------
def run_bench() -> dict[str, Any] | None:
    """``mseplug bench --quick --json --scaling``, when this mseplug has ``--json``; else ``None``."""
    command = [sys.executable, "-m", "mseplug", "bench"]
    usage = subprocess.run([*command, "--help"], capture_output=True, text=True).stdout
    if "--json" not in usage:
        print("make_figures: `mseplug bench` has no --json option in this version; "
              "skipping the benchmark charts")
        return None
    flags = ["--quick", "--json"] + (["--scaling"] if "--scaling" in usage else [])
    print(f"make_figures: running `mseplug bench {' '.join(flags)}` ...", flush=True)
    result = subprocess.run([*command, *flags], capture_output=True, text=True)
    if result.returncode != 0:
        print(f"make_figures: `mseplug bench --quick --json` failed; skipping the benchmark "
              f"charts\n{result.stderr[-2000:]}")
        return None
    return parse_bench(result.stdout)


def parse_bench(text: str) -> dict[str, Any] | None:
    """The bench JSON object in ``text``, alone or among other lines of output, else ``None``."""
    decoder = json.JSONDecoder()
    starts = [0] + [i + 1 for i, char in enumerate(text) if char == "\n" and text[i + 1:i + 2] == "{"]
    for start in starts:
        try:
            data, _ = decoder.raw_decode(text[start:].lstrip())
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict) and "rows" in data:
            return data
    return None


def ratio_chart(data: dict[str, Any]) -> Path | None:
    """One bar per (case, anchor): anchor time / mseplug time, with the goal where one is set."""
    rows = data.get("rows") or []
    if not rows:
        return None
    labels = [f"{r['backend']}: {r['case']} vs {r['anchor']}" for r in rows]
    ratios = [float(r["ratio"]) for r in rows]
    colors = ["C2" if r.get("met") else ("C3" if r.get("met") is False else "C0") for r in rows]
    fig, ax = plt.subplots(figsize=(9.5, 0.32 * len(rows) + 1.2))
    positions = np.arange(len(rows))[::-1]
    ax.barh(positions, ratios, color=colors)
    for y, row in zip(positions, rows):
        if row.get("goal_value") is not None:
            ax.plot([row["goal_value"]] * 2, [y - 0.4, y + 0.4], color="k", linewidth=1.5)
    ax.axvline(1.0, color="0.4", linewidth=0.8)
    ax.set_yticks(positions, labels, fontsize=7)
    ax.set_xscale("log")
    shown = [*ratios, *(r["goal_value"] for r in rows if r.get("goal_value") is not None)]
    ticks = [t for t in (0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 25, 50, 100, 250, 1000)
             if min(shown) / 2 <= t <= max(shown) * 2]
    ax.set_xticks(ticks, [f"{t:g}×" for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("anchor time / mseplug time, higher is better "
                  "(black tick: goal; green: met; red: missed)")
    ax.set_title(f"mseplug {data.get('mseplug', '?')}: ratios against each anchor")
    return _save(fig, "bench-ratios.png")


def scaling_chart(data: dict[str, Any]) -> Path | None:
    """Time against n on log axes: mseplug (solid) and its anchor (dashed) per backend."""
    points = data.get("scaling") or []
    if not points:
        return None
    series: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for point in points:
        series.setdefault((point["backend"], point.get("dtype", "")), []).append(point)
    fig, ax = plt.subplots(figsize=(7.0, 4.2))
    for i, ((backend, dtype), group) in enumerate(sorted(series.items())):
        group.sort(key=lambda p: p["n"])
        n = [p["n"] for p in group]
        ax.plot(n, [p["mseplug_s"] for p in group], "-o", color=f"C{i}", markersize=3,
                label=f"mseplug, {backend} {dtype}")
        ax.plot(n, [p["anchor_s"] for p in group], "--", color=f"C{i}",
                label=f"{group[0]['anchor']}, {backend} {dtype}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("n (elements)")
    ax.set_ylabel("seconds per call (median)")
    ax.set_title("MSE: time against n")
    ax.legend(frameon=False, fontsize=7)
    return _save(fig, "bench-scaling.png")


def benchmark_page(data: dict[str, Any] | None, reason: str) -> str:
    """The Markdown the Benchmarks page includes: the charts, or why there are none."""
    if data is None:
        return (f"!!! note \"No benchmark charts in this build\"\n    {reason} Run "
                "`make docs` on a version whose `mseplug bench` has `--json` to draw them.\n")
    machine = data.get("machine", {})
    lines = [f"Measured with mseplug {data.get('mseplug', '?')}, median of "
             f"{data.get('repeat', '?')} repeats, on: "
             + ", ".join(f"{k} {v}" for k, v in machine.items()) + ".\n"]
    for chart, title in ((ratio_chart(data), "Ratios against each anchor"),
                         (scaling_chart(data), "Time against n")):
        if chart is None:
            lines.append(f"*{title}: no data in this run.*\n")
        else:
            lines.append(f"![{title}](generated/{chart.name})\n")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--bench", action="store_true", help="run `mseplug bench --quick --json`")
    source.add_argument("--bench-json", type=Path, help="draw the charts from this JSON file")
    args = parser.parse_args(argv)
    OUT.mkdir(exist_ok=True)
    for old in OUT.glob("*.png"):
        old.unlink()
    plt.rcParams.update(STYLE)
    written = [*loss_figures(), outlier_figure()]

    data, reason = None, "No benchmark data was given to `docs/make_figures.py`."
    if args.bench:
        data = run_bench()
        reason = "`mseplug bench --quick --json` is not available in this version."
        if data is not None:
            (OUT / "bench.json").write_text(json.dumps(data, indent=1) + "\n")
    elif args.bench_json is not None:
        data = parse_bench(args.bench_json.read_text())
        reason = f"`{args.bench_json}` holds no benchmark JSON."
    if data is None:
        print(f"make_figures: note: no benchmark charts ({reason})")
    (OUT / "benchmarks.md").write_text(benchmark_page(data, reason))
    written += sorted(OUT.glob("bench-*.png"))
    print(f"make_figures: wrote {len(written)} figures to {OUT.relative_to(HERE.parent)}/: "
          + ", ".join(p.name for p in written))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

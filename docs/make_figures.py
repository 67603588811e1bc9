"""Draw the documentation's figures and generated tables from mseplug itself (``make docs``).

Everything lands in ``docs/generated/`` (ignored by git, rebuilt every time):

- ``loss-<name>.png``: one loss of the residual (left) and its derivative
  (right), computed by ``mseplug.value_and_grad`` one sample at a time, the
  parameters in the title; ``losses.png``: every such registered loss on one
  pair of axes. A loss with a root (RMSE) is not a function of one residual
  and has no curve here; ``rmse.png`` shows RMSE where it means something: the
  house example, in dollars;
- ``outlier.png``: the loss of a constant prediction ``c`` under MSE and MAE,
  with and without an outlier, the minimisers (mean, median) marked;
- ``tests/``: a copy of the test files, which the comparison page links to;
- ``goals.md``: the goals table, generated from the goals ``mseplug bench``
  applies (``mseplug.cli.bench_cases.GOALS``);
- ``bench-ratios.png``, ``bench-scaling.png``, ``benchmarks.md`` and
  ``measured.md``: the benchmark charts and tables, drawn from
  ``benchmarks/results/bench.json`` (or ``--bench-json FILE``). ``--bench``
  rewrites that file first: the full ``mseplug bench --json --scaling``
  ``--runs`` times (3 by default), each row and point the median of the runs.

Usage: ``python docs/make_figures.py [--bench [--runs N] | --bench-json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

import mseplug
from mseplug.cli.bench_cases import GOAL_SIZE, GOALS, count

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "generated"
BENCH_JSON = ROOT / "benchmarks" / "results" / "bench.json"
RESIDUALS = np.linspace(-3.0, 3.0, 241)
STYLE = {"figure.dpi": 110, "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False,
         "axes.spines.right": False, "font.size": 9}

#: The built-in losses drawn with other parameter values than their defaults, so what the
#: parameter does shows: pinball at alpha = 0.9 and 0.1 (at 0.5 it is half of MAE).
VARIANTS: dict[str, list[dict[str, float]]] = {"pinball": [{"alpha": 0.9}, {"alpha": 0.1}]}
#: The derivative of each built-in, for the right panel's title (a registered loss has none).
SLOPES = {"mse": "2r", "mae": "sign r (0 at r = 0)", "huber": "r inside δ, ±δ outside",
          "pinball": "−α below 0, 1 − α above", "log_cosh": "tanh r"}
FORMULAS = {"mse": "r²", "mae": "|r|", "huber": "½r² or δ(|r| − ½δ)",
            "pinball": "α|r| below 0, (1 − α)r above", "log_cosh": "log cosh r"}
#: Units of one sample's loss and of its derivative, for a residual in the target's units.
UNITS = {"mse": ("units²", "units"), "mae": ("units", "no unit"), "huber": ("units²", "units"),
         "pinball": ("units", "no unit"),
         "log_cosh": ("≈ ½r² near 0, ≈ |r| − log 2 far out", "tanh r, no unit")}


# -- losses ---------------------------------------------------------------------------------------
def curve_losses() -> list[str]:
    """Registered losses of the residual alone, with no root after the mean: one curve each.

    A loss of the truth and the prediction separately (msle, the deviances) has no
    single curve against the residual; the formula page draws those at fixed truths.
    """
    records = [mseplug.get_loss(name).loss for name in mseplug.losses()]
    return [loss.name for loss in records if loss.residual and not loss.root]


def loss_curve(name: str, **params: float) -> tuple[np.ndarray, np.ndarray | None]:
    """The loss of one sample and its derivative at each residual ``r = y_pred - y_true``."""
    values, slopes = [], []
    for r in RESIDUALS:
        try:
            value, slope = mseplug.value_and_grad(name, np.zeros(1), np.array([r]), **params)
            slopes.append(float(slope[0]))
        except TypeError:  # a loss without a derivative has no NumPy gradient
            value = mseplug.get_loss(name)(np.zeros(1), np.array([r]), **params)
        values.append(float(value))
    return np.array(values), (np.array(slopes) if len(slopes) == len(values) else None)


def _settings(name: str) -> list[dict[str, float]]:
    """The parameter values a loss is drawn with: its variants, else its defaults."""
    return VARIANTS.get(name) or [dict(mseplug.get_loss(name).loss.defaults)]


def _label(name: str, params: dict[str, float]) -> str:
    symbols = {"alpha": "α", "delta": "δ"}
    shown = ", ".join(f"{symbols.get(k, k)} = {v:g}" for k, v in params.items())
    return f"{name} ({shown})" if shown else name


def _axes_labels(value_ax: Any, slope_ax: Any, names: list[str]) -> None:
    units = {UNITS.get(n, ("", ""))[0] for n in names} - {""}
    slope_units = {UNITS.get(n, ("", ""))[1] for n in names} - {""}
    single = len(names) == 1
    value_ax.set_ylabel("loss of one sample ℓ(r)"
                        + (f" ({', '.join(sorted(units))})" if single and units else ""))
    slope_ax.set_ylabel("derivative dℓ/dŷ"
                        + (f" ({', '.join(sorted(slope_units))})" if single and slope_units else ""))
    for ax in (value_ax, slope_ax):
        ax.set_xlabel("residual r = ŷ − y (target units)")
        ax.axhline(0.0, color="0.5", linewidth=0.6)
        ax.axvline(0.0, color="0.5", linewidth=0.6)


def one_loss_figure(name: str) -> Path:
    """``loss-<name>.png``: the loss and its derivative side by side, parameters in the title."""
    fig, (value_ax, slope_ax) = plt.subplots(1, 2, figsize=(8.4, 3.1))
    settings = _settings(name)
    for i, params in enumerate(settings):
        values, slopes = loss_curve(name, **params)
        label = _label(name, params)
        value_ax.plot(RESIDUALS, values, color=f"C{i}", label=label)
        if slopes is not None:
            slope_ax.plot(RESIDUALS, slopes, color=f"C{i}", label=label)
    if name == "pinball":  # alpha = 0.5 is half of MAE: symmetric, for comparison
        values, slopes = loss_curve("mae")
        value_ax.plot(RESIDUALS, values / 2, color="0.45", linestyle=":", label="MAE / 2 (α = 0.5)")
        slope_ax.plot(RESIDUALS, np.asarray(slopes) / 2, color="0.45", linestyle=":",
                      label="MAE / 2 (α = 0.5)")
    for params in settings:  # where Huber turns from quadratic to linear
        if "delta" in params:
            for ax in (value_ax, slope_ax):
                for edge in (-params["delta"], params["delta"]):
                    ax.axvline(edge, color="0.55", linestyle=":", linewidth=0.9)
    if name == "mae":  # the subgradient mseplug uses at r = 0
        slope_ax.plot([0.0], [0.0], "o", color="C0", markersize=4, label="0 at r = 0 (subgradient)")
    _axes_labels(value_ax, slope_ax, [name])
    value_ax.set_title(f"{_title(name, settings)}: loss"
                       + (f"\nℓ(r) = {FORMULAS[name]}" if name in FORMULAS else "")
                       + (", quadratic inside |r| = δ (dotted)"
                          if any("delta" in p for p in settings) else ""))
    slope_ax.set_title(f"{_title(name, settings)}: derivative"
                       + (f"\ndℓ/dŷ = {SLOPES[name]}" if name in SLOPES else ""))
    handles, labels = slope_ax.get_legend_handles_labels()
    if len(settings) == 1 and name != "mae":  # one curve per panel: the titles say it all
        fig.tight_layout()
        return _save(fig, f"loss-{name}.png", tight=False)
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False, fontsize=8)
    fig.tight_layout(rect=(0, 0.09, 1, 1))
    return _save(fig, f"loss-{name}.png", tight=False)


def _title(name: str, settings: list[dict[str, float]]) -> str:
    if len(settings) == 1:
        return _label(name, settings[0])
    return name + " (" + "; ".join(_label("", p).strip(" ()") for p in settings) + ")"


def all_losses_figure(names: list[str]) -> Path:
    """``losses.png``: every loss of one residual on one pair of axes, to compare shapes."""
    fig, (value_ax, slope_ax) = plt.subplots(1, 2, figsize=(10.0, 4.2))
    styles = ["-", "--", "-.", ":"]
    i = 0
    for name in names:
        for params in _settings(name):
            values, slopes = loss_curve(name, **params)
            style = {"color": f"C{i % 10}", "linestyle": styles[(i // 10) % len(styles)]}
            value_ax.plot(RESIDUALS, values, label=_label(name, params), **style)
            if slopes is not None:
                slope_ax.plot(RESIDUALS, slopes, **style)
            i += 1
    _axes_labels(value_ax, slope_ax, names)
    value_ax.set_title("loss of one sample (MSE, Huber in units²; MAE, pinball in units)")
    slope_ax.set_title("its derivative with respect to the prediction")
    fig.legend(*value_ax.get_legend_handles_labels(), loc="lower center", ncol=min(i, 6),
               frameon=False, fontsize=8)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return _save(fig, "losses.png", tight=False)


def loss_figures() -> list[Path]:
    names = curve_losses()
    return [*(one_loss_figure(name) for name in names), all_losses_figure(names)]


def rmse_figure() -> Path:
    """``rmse.png``: the house example in dollars: MSE in squared dollars, RMSE and MAE in dollars."""
    truth = np.array([120_000.0, 60_000.0])
    errors = np.linspace(0.0, 60_000.0, 121)  # house 2's error; house 1 stays 20K too low
    mse, rmse, mae = [], [], []
    for e in errors:
        pred = np.array([100_000.0, 60_000.0 + e])
        mse.append(float(mseplug.mse(truth, pred)))
        rmse.append(float(mseplug.rmse(truth, pred)))
        mae.append(float(mseplug.mae(truth, pred)))
    fig, (square, root) = plt.subplots(1, 2, figsize=(10.0, 3.6))
    k = errors / 1e3
    square.plot(k, np.array(mse) / 1e8, color="C0", label="MSE")
    square.set_ylabel("MSE (10⁸ squared dollars)")
    square.set_title("MSE is in squared dollars")
    root.plot(k, np.array(rmse) / 1e3, color="C0", label="RMSE = √MSE")
    root.plot(k, np.array(mae) / 1e3, color="C1", linestyle="--", label="MAE")
    root.set_ylabel("loss (thousand dollars)")
    root.set_title("RMSE is in dollars, like the errors, and never below MAE")
    at = int(np.argmin(np.abs(errors - 20_000.0)))
    square.plot([20.0], [mse[at] / 1e8], "ko", markersize=4)
    square.annotate("the example: errors −20K and +20K\nMSE = 4·10⁸ $²", (20.0, mse[at] / 1e8),
                    xytext=(2.0, 12.0), fontsize=8,
                    arrowprops={"arrowstyle": "->", "color": "0.3"})
    root.plot([20.0], [rmse[at] / 1e3], "ko", markersize=4)
    root.annotate("the example: RMSE = MAE = 20K $\n(equal errors)", (20.0, rmse[at] / 1e3),
                  xytext=(32.0, 6.0), fontsize=8, arrowprops={"arrowstyle": "->", "color": "0.3"})
    for ax in (square, root):
        ax.set_xlabel("error of house 2 (thousand dollars; house 1 stays 20K too low)")
        ax.set_xlim(0, 60)
        ax.set_ylim(bottom=0)
    root.legend(frameon=False, loc="upper left")
    fig.suptitle("Two houses worth 120K and 60K dollars: house 1 predicted at 100K, house 2 at "
                 "60K + error", fontsize=9)
    return _save(fig, "rmse.png")


def _minimiser(loss: Any, values: np.ndarray, grid: np.ndarray) -> tuple[float, float]:
    """The constant c that minimises ``loss(values, c)``: best on ``grid``, refined to 0.001."""
    def at(c: float) -> float:
        return float(loss(values, np.full_like(values, c)))

    coarse = grid[int(np.argmin([at(c) for c in grid]))]
    step = float(grid[1] - grid[0])
    fine = np.round(np.arange(coarse - step, coarse + step, 0.001), 3)
    best = float(fine[int(np.argmin([at(c) for c in fine]))])
    return best, at(best)


def outlier_figure() -> Path:
    """``outlier.png``: MSE and MAE of predicting one constant c, with and without an outlier."""
    rng = np.random.default_rng(7)
    y = np.sort(np.round(rng.normal(10.0, 1.0, size=19), 1))
    outlier = 60.0
    moved = np.append(y[:-1], outlier)  # the largest value, misrecorded as 60
    data = {f"19 values near 10 (largest {y[-1]:g})": y,
            f"the same, the largest recorded as {outlier:g}": moved}
    constants = np.linspace(0.0, 65.0, 651)
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.6))
    for ax, name, unit, statistic, word in ((axes[0], "mse", "units²", np.mean, "mean"),
                                            (axes[1], "mae", "units", np.median, "median")):
        loss = mseplug.get_loss(name)
        for (label, values), style in zip(data.items(), ("-", "--")):
            curve = [float(loss(values, np.full_like(values, c))) for c in constants]
            best, lowest = _minimiser(loss, values, constants)
            line, = ax.plot(constants, curve, linestyle=style, label=label)
            ax.axvline(best, color=line.get_color(), linestyle=style, linewidth=0.9)
            ax.plot([best], [lowest], "o", color=line.get_color(), markersize=5,
                    label=f"its minimum: c = {best:.2f}, the {word} ({statistic(values):.2f})")
        top = ax.get_ylim()[1]
        ax.plot(y[:-1], np.full(len(y) - 1, -0.04 * top), "|", color="k", markersize=9,
                label="the data (18 values shared by both)")
        ax.plot([y[-1]], [-0.04 * top], "|", color="C0", markersize=12, markeredgewidth=2,
                label=f"the largest value, {y[-1]:g} ...")
        ax.plot([outlier], [-0.04 * top], "|", color="C1", markersize=12, markeredgewidth=2,
                label=f"... recorded as {outlier:g} (the outlier)")
        ax.set_ylim(-0.08 * top, top)
        ax.set_xlim(0, 65)
        ax.set_xlabel("constant prediction c for every sample (target units)")
        ax.set_ylabel(f"{name.upper()} of predicting c ({unit})")
        ax.set_title(f"{name.upper()}: the best constant is the {word}")
        ax.legend(frameon=False, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16),
                  ncol=2)
    fig.suptitle(f"19 values near 10, then the same with the largest ({y[-1]:g}) recorded as "
                 f"{outlier:g}: the mean moves from {np.mean(y):.2f} to {np.mean(moved):.2f}, "
                 f"the median stays at {np.median(moved):.2f}", fontsize=9)
    return _save(fig, "outlier.png")


def _save(fig: Any, name: str, tight: bool = True) -> Path:
    path = OUT / name
    if tight:
        fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
    return path


# -- goals ----------------------------------------------------------------------------------------
def goals_table() -> str:
    """The goals ``mseplug bench`` applies, as the Markdown table the Benchmarks page includes."""
    lines = ["| backend | case | compared with | goal | checked as |", "|---|---|---|---|---|"]
    for goal in GOALS:
        lines.append(f"| {goal.backend} | {goal.case} | `{goal.anchor}` | {goal.words} | "
                     f"`{goal.text.split(' (')[0]}` |")
    return "\n".join(lines) + "\n"


# -- benchmarks -----------------------------------------------------------------------------------
def run_bench(runs: int) -> dict[str, Any] | None:
    """``mseplug bench --json --scaling`` ``runs`` times, merged (each value the runs' median)."""
    command = [sys.executable, "-m", "mseplug", "bench", "--json", "--scaling"]
    reports = []
    for run in range(runs):
        print(f"make_figures: `mseplug bench --json --scaling`, run {run + 1} of {runs} ...",
              flush=True)
        result = subprocess.run(command, capture_output=True, text=True)
        data = parse_bench(result.stdout) if result.returncode == 0 else None
        if data is None:
            print(f"make_figures: `mseplug bench` failed\n{result.stderr[-2000:]}")
            return None
        reports.append(data)
    return merge_runs(reports)


def merge_runs(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """One report from several: each row's and point's times and ratio are the runs' medians."""
    merged = dict(reports[0])
    rows = []
    for row in reports[0]["rows"]:
        key = (row["backend"], row["case"], row["anchor"])
        same = [r for report in reports for r in report["rows"]
                if (r["backend"], r["case"], r["anchor"]) == key]
        ratios = [r["anchor_s"] / r["mseplug_s"] for r in same]
        ratio = statistics.median(ratios)
        rows.append({**row, "mseplug_s": statistics.median(r["mseplug_s"] for r in same),
                     "anchor_s": statistics.median(r["anchor_s"] for r in same), "ratio": ratio,
                     "ratios": ratios,
                     "met": None if row["goal_value"] is None else ratio >= row["goal_value"]})
    points = []
    for point in reports[0].get("scaling") or []:
        key = (point["backend"], point["n"], point["dtype"])
        same = [p for report in reports for p in report.get("scaling") or []
                if (p["backend"], p["n"], p["dtype"]) == key]
        points.append({**point, "mseplug_s": statistics.median(p["mseplug_s"] for p in same),
                       "anchor_s": statistics.median(p["anchor_s"] for p in same)})
    merged.update(rows=rows, scaling=points, runs=len(reports))
    return merged


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


def _ratio(value: float) -> str:
    """A ratio with enough digits to tell it from a goal next to it: 0.968×, 2.77×, 51.3×."""
    return f"{value:.3g}×"


def _row_label(row: dict[str, Any]) -> str:
    return f"{row['backend']}: {row['case']}  vs  {row['anchor']}"


def ratio_chart(data: dict[str, Any]) -> Path | None:
    """One bar per (case, anchor): anchor time / mseplug time, with the goal where one is set."""
    rows = data.get("rows") or []
    if not rows:
        return None
    ratios = np.array([float(r["ratio"]) for r in rows])
    kinds = ["met" if r.get("met") else ("missed" if r.get("met") is False else "none") for r in rows]
    colors = {"met": "#3a9a4a", "missed": "#c8423b", "none": "#8c9bb0"}
    height = 0.3 * len(rows) + 1.9  # inches: the bars, the title, the axis label and the legend
    fig, ax = plt.subplots(figsize=(11.0, height))
    positions = np.arange(len(rows))[::-1]
    ax.barh(positions, ratios, color=[colors[k] for k in kinds], height=0.7)
    goals = {y: r["goal_value"] for y, r in zip(positions, rows) if r.get("goal_value") is not None}
    for y, value in goals.items():
        ax.plot([value] * 2, [y - 0.42, y + 0.42], color="k", linewidth=1.6)
    for y, ratio in zip(positions, ratios):  # the value right of the bar and of its goal tick
        ax.text(max(ratio, goals.get(y, 0.0)) * 1.06, y, _ratio(ratio), va="center", fontsize=7)
    ax.axvline(1.0, color="0.3", linewidth=0.8, linestyle=":")
    ax.set_yticks(positions, [_row_label(r) for r in rows], fontsize=7)
    ax.set_xscale("log")
    shown = [*ratios, *goals.values()]
    low, high = min(shown) / 1.5, max(shown) * 2.2  # room for the value labels
    ax.set_xlim(low, high)
    ticks = [t for t in (0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 25, 50, 100, 250, 1000) if low <= t <= high]
    ax.set_xticks(ticks, [f"{t:g}×" for t in ticks])
    ax.minorticks_off()
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("ratio = anchor time / mseplug time (log scale; above 1×: mseplug is faster)")
    ax.set_ylim(-0.7, len(rows) - 0.3)
    fig.suptitle(f"mseplug {data.get('mseplug', '?')} against each anchor\n{_when(data)}",
                 fontsize=9)
    handles = [Patch(color=colors["met"], label="goal met"),
               Patch(color=colors["missed"], label="goal missed"),
               Patch(color=colors["none"], label="no goal (reported)"),
               Line2D([], [], color="k", linewidth=1.6, label="the goal (black tick)"),
               Line2D([], [], color="0.3", linewidth=0.8, linestyle=":", label="1× (same time)")]
    fig.legend(handles=handles, loc="lower center", ncol=5, frameon=False, fontsize=8)
    fig.tight_layout(rect=(0, 0.35 / height, 1, 1))
    return _save(fig, "bench-ratios.png", tight=False)


def _when(data: dict[str, Any]) -> str:
    runs = data.get("runs", 1)
    return (f"median of {runs} run{'s' if runs != 1 else ''}, {data.get('date', 'undated')}, "
            f"{data.get('machine', {}).get('cpu', '?')} ({data.get('machine', {}).get('cpu_count', '?')}"
            " cores)")


def scaling_chart(data: dict[str, Any]) -> Path | None:
    """Time against n on log axes, one panel per backend: mseplug and its anchor, per dtype."""
    points = data.get("scaling") or []
    if not points:
        return None
    backends = list(dict.fromkeys(p["backend"] for p in points))
    dtypes = sorted({p.get("dtype", "float32") for p in points})
    columns = 2 if len(backends) > 1 else 1
    rows = -(-len(backends) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5.0 * columns, 3.3 * rows + 0.8),
                             squeeze=False, sharex=True)
    for ax, backend in zip(axes.flat, backends):
        anchor = ""
        for i, dtype in enumerate(dtypes):
            group = sorted((p for p in points if p["backend"] == backend
                            and p.get("dtype", "float32") == dtype), key=lambda p: p["n"])
            if not group:
                continue
            anchor = group[0]["anchor"]
            n = [p["n"] for p in group]
            ax.plot(n, [p["mseplug_s"] for p in group], "-o", color=f"C{i}", markersize=3)
            ax.plot(n, [p["anchor_s"] for p in group], "--s", color=f"C{i}", markersize=3,
                    markerfacecolor="none")
        largest = max(p["n"] for p in points if p["backend"] == backend)
        ax.set_title(f"{backend}: mseplug.mse against {anchor} (n = 10 … {_power(largest)})",
                     fontsize=8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylabel("seconds per call (median)")
    for ax in axes[-1]:
        ax.set_xlabel("n (elements of each input)")
    for ax in list(axes.flat)[len(backends):]:
        ax.set_visible(False)
    handles = []
    for i, dtype in enumerate(dtypes):
        handles += [Line2D([], [], color=f"C{i}", marker="o", markersize=3, label=f"mseplug, {dtype}"),
                    Line2D([], [], color=f"C{i}", linestyle="--", marker="s", markersize=3,
                           markerfacecolor="none", label=f"the anchor (panel title), {dtype}")]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False, fontsize=8)
    fig.suptitle(f"MSE: time of one call against n; {_when(data)}", fontsize=9)
    fig.tight_layout(rect=(0, 0.6 / (3.3 * rows + 0.8), 1, 1))
    return _save(fig, "bench-scaling.png", tight=False)


def _power(n: int) -> str:
    """``10**8`` as ``'10⁸'`` (other numbers as they are)."""
    exponent = len(str(n)) - 1
    if n != 10**exponent:
        return f"{n:,}"
    return "10" + "".join("⁰¹²³⁴⁵⁶⁷⁸⁹"[int(d)] for d in str(exponent))


def _seconds(value: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value / 1e-9:.3g} ns"


def measured_table(data: dict[str, Any] | None) -> str:
    """Every row of the bench JSON as a Markdown table (the Benchmarks and physical-limit pages)."""
    if data is None:
        return "*No benchmark data in this build.*\n"
    lines = ["| backend | case | mseplug | compared with | its time | ratio | goal | |",
             "|---|---|---|---|---|---|---|---|"]
    for row in data.get("rows") or []:
        verdict = {True: "met", False: "**missed**", None: ""}[row.get("met")]
        lines.append(f"| {row['backend']} | {row['case']} | {_seconds(row['mseplug_s'])} | "
                     f"`{row['anchor']}` | {_seconds(row['anchor_s'])} | {_ratio(row['ratio'])} | "
                     f"{row.get('goal') or ''} | {verdict} |")
    return "\n".join(lines) + f"\n\n{caption(data)}\n"


def bandwidth_table(data: dict[str, Any] | None) -> str:
    """The NumPy rows at the goals' size with the bandwidth of each side (the physical limit)."""
    rows = [r for r in (data or {}).get("rows") or [] if r["backend"] == "numpy"
            and f"n={count(GOAL_SIZE)} " in r["case"]]
    if data is None or not rows:
        return "*No measurements of 10⁷ elements in this build.*\n"
    lines = ["| case | mseplug | compared with | its time | ratio |", "|---|---|---|---|---|"]
    for row in rows:
        bytes_read = 2 * GOAL_SIZE * (4 if "float32" in row["case"] else 8)

        def rate(seconds: float, bytes_read: int = bytes_read) -> str:
            return f"{_seconds(seconds)} ({bytes_read / seconds / 1e9:.0f} GB/s)"

        lines.append(f"| {row['case']} | {rate(row['mseplug_s'])} | `{row['anchor']}` | "
                     f"{rate(row['anchor_s'])} | {_ratio(row['ratio'])} |")
    return "\n".join(lines) + f"\n\n{caption(data)}\n"


def caption(data: dict[str, Any]) -> str:
    machine = data.get("machine", {})
    versions = ", ".join(f"{k} {machine[k]}" for k in ("python", "numpy", "torch", "jax",
                                                       "scikit-learn", "dask") if k in machine)
    runs = data.get("runs", 1)
    return (f"Measured on {data.get('date', 'an unrecorded date')} with mseplug "
            f"{data.get('mseplug', '?')}: median of {runs} run{'s' if runs != 1 else ''} of "
            f"`mseplug bench`, each the median of {data.get('repeat', '?')} alternating warm "
            f"repeats; {machine.get('cpu', machine.get('processor', '?'))}, "
            f"{machine.get('cpu_count', '?')} cores, {machine.get('platform', '?')}; {versions}.")


def benchmark_page(data: dict[str, Any] | None, reason: str) -> str:
    """The Markdown the Benchmarks page includes: the charts, or why there are none."""
    if data is None:
        return (f"!!! note \"No benchmark charts in this build\"\n    {reason} Run "
                "`make bench-json` to measure them on this machine.\n")
    lines = [caption(data) + "\n"]
    for chart, title in ((ratio_chart(data), "Ratios against each anchor"),
                         (scaling_chart(data), "Time against n")):
        if chart is None:
            lines.append(f"*{title}: no data in this run.*\n")
        else:
            lines.append(f"![{title}](generated/{chart.name})\n")
    return "\n".join(lines)


def copy_tests() -> list[Path]:
    """The test files, copied into the site so the comparison page can link each "yes" to one."""
    target = OUT / "tests"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    copied = []
    for path in sorted((ROOT / "tests").glob("*/test_*.py")):  # tests/<layer>/test_*.py
        (target / path.parent.name).mkdir(exist_ok=True)
        copied.append(Path(shutil.copy2(path, target / path.parent.name)))
    return copied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--bench", action="store_true",
                        help=f"run the full `mseplug bench` and rewrite {BENCH_JSON.relative_to(ROOT)}")
    source.add_argument("--bench-json", type=Path, help="draw the charts from this JSON file")
    parser.add_argument("--runs", type=int, default=3, help="bench runs to take the median of")
    args = parser.parse_args(argv)
    OUT.mkdir(exist_ok=True)
    for old in OUT.glob("*.png"):
        old.unlink()
    plt.rcParams.update(STYLE)
    written = [*loss_figures(), rmse_figure(), outlier_figure()]
    (OUT / "goals.md").write_text(goals_table())
    copy_tests()

    source_file = args.bench_json or BENCH_JSON
    if args.bench:
        data = run_bench(max(1, args.runs))
        if data is None:
            return 1
        BENCH_JSON.parent.mkdir(parents=True, exist_ok=True)
        BENCH_JSON.write_text(json.dumps(data, indent=1) + "\n")
    data = parse_bench(source_file.read_text()) if source_file.exists() else None
    reason = f"`{source_file.name}` holds no benchmark JSON."
    if data is None:
        print(f"make_figures: note: no benchmark charts ({reason})")
    (OUT / "benchmarks.md").write_text(benchmark_page(data, reason))
    (OUT / "measured.md").write_text(measured_table(data))
    (OUT / "bandwidth.md").write_text(bandwidth_table(data))
    written += sorted(OUT.glob("bench-*.png"))
    print(f"make_figures: wrote {len(written)} figures to {OUT.relative_to(ROOT)}/: "
          + ", ".join(p.name for p in written))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

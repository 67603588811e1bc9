"""``mseplug demo``: two small problems on every installed backend, side by side.

The house-price example shows why squares matter (the raw errors cancel, the
squared ones do not); a small linear regression shows values and gradients.
Each row is computed by every backend in float64; the last two columns are
the largest differences between backends. A loss with a domain (its record's
``domain``: msle takes values above -1) gets a problem's truth and predictions
shifted by a whole number into it, the same for both (so the residuals stay),
and the row says so: ``regression (+7)``.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from typing import Any

import numpy as np

import mseplug
from mseplug.cli import metrics as _metrics


def _libraries() -> dict[str, tuple[Callable[[np.ndarray], Any], Callable[[Any], np.ndarray]]]:
    """Installed libraries: (from NumPy, to NumPy) converters, in a fixed order."""
    libs: dict[str, tuple[Callable[[np.ndarray], Any], Callable[[Any], np.ndarray]]] = {
        "numpy": (np.asarray, np.asarray)
    }
    if importlib.util.find_spec("torch"):
        import torch

        libs["torch"] = (torch.from_numpy, lambda x: x.detach().cpu().numpy())
    if importlib.util.find_spec("jax"):
        import jax

        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp

        libs["jax"] = (jnp.asarray, np.asarray)
    if importlib.util.find_spec("array_api_strict"):
        import array_api_strict

        libs["array_api_strict"] = (array_api_strict.asarray, lambda x: np.from_dlpack(x))
    return libs


def problems() -> list[tuple[str, np.ndarray, np.ndarray, dict[str, Any]]]:
    """The demo's problems: (title, y_true, y_pred, options)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3))
    y = x @ np.array([2.0, -1.0, 0.5]) + 0.1 * rng.normal(size=64)
    fitted = x @ np.array([1.9, -1.1, 0.6])
    weights = rng.uniform(0.5, 1.5, size=64)
    return [
        ("house prices", np.array([120_000.0, 60_000.0]), np.array([100_000.0, 80_000.0]), {}),
        ("regression", y, fitted, {}),
        ("regression, weighted", y, fitted, {"sample_weight": weights}),
    ]


def shift(loss: str, y_true: np.ndarray, y_pred: np.ndarray) -> int:
    """The smallest whole number that, added to both ``y_true`` and ``y_pred``, moves every
    value inside the loss's domain (at its default parameters); 0 when they already are."""
    record = mseplug.get_loss(loss).loss
    needed = 0
    for arg, bound in record.bounds(record.check_params({})).items():
        lowest = float(np.min({"y_true": y_true, "y_pred": y_pred}[arg]))
        if lowest < bound.low or (lowest == bound.low and not bound.inclusive):
            needed = max(needed, math.floor(bound.low - lowest) + 1)
    return needed


def rows() -> tuple[list[str], list[list[str]]]:
    libs = _libraries()
    header = ["problem", "loss", *libs, "max |Δ value|", "max |Δ grad|"]
    table = []
    for problem, y_true_0, y_pred_0, options in problems():
        for loss in mseplug.losses():
            offset = shift(loss, y_true_0, y_pred_0)
            y_true, y_pred = y_true_0 + offset, y_pred_0 + offset
            title = f"{problem} (+{offset})" if offset else problem
            spec = mseplug.get_loss(loss).loss.statistics
            if "sample_weight" in options and spec is not None and not spec.sample_weight:
                # max_error, as scikit-learn's, takes no weights: said in the row
                table.append([title, loss, *("no weights" for _ in libs), "0.0e+00", "0.0e+00"])
                continue
            values, grads = [], []
            for to_lib, to_numpy in libs.values():
                extra = {k: to_lib(v) for k, v in options.items()}
                value, grad = mseplug.value_and_grad(loss, to_lib(y_true), to_lib(y_pred), **extra)
                values.append(float(to_numpy(value)))
                grads.append(np.asarray(to_numpy(grad), dtype=np.float64))
            value_spread = max(values) - min(values)
            grad_spread = max(float(np.max(np.abs(g - grads[0]))) for g in grads)
            table.append([title, loss, *(f"{v:.10g}" for v in values),
                          f"{value_spread:.1e}", f"{grad_spread:.1e}"])
    return header, table


def format_table(header: list[str], table: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *table]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths)), line]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in table]
    return "\n".join(out)


def run() -> int:
    truth, guess = problems()[0][1:3]
    print("House prices: truth 120K and 60K, predicted 100K and 80K.")
    print(f"  raw errors sum to {float(np.sum(guess - truth)):.0f}, yet "
          f"MSE = {float(mseplug.mse(truth, guess)):.3g} and MAE = {float(mseplug.mae(truth, guess)):.3g}")
    grad = mseplug.grad("mse", truth, guess)
    print(f"  d MSE / d y_pred = {grad.tolist()}  (2·residual / n)\n")
    header, table = rows()
    print(format_table(header, table))
    shifted = [loss for loss in mseplug.losses()
               if any(shift(loss, y_true, y_pred) for _, y_true, y_pred, _ in problems())]
    if shifted:
        domains = "; ".join(f"{loss}: {_metrics.domain_text(loss)}" for loss in shifted)
        print(f"\n(+k): the truth and the predictions plus k, inside the loss's domain ({domains})")
    worst = max(max(float(r[-2]), float(r[-1])) for r in table)
    print(f"\nBackends: {', '.join(header[2:-2])}. Largest cross-backend difference: {worst:.1e}")
    return 0

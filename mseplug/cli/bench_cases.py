"""The cases ``mseplug bench`` times: each installed backend against its anchor, and its goals.

Each function returns :class:`Row` records for one backend, timed side by
side with :func:`mseplug.cli.timing.compare`. ``ratio = anchor time / mseplug
time``, so a goal ``>= 3`` means "at least 3 times faster" and ``>= 0.91``
means "within 1.1 times the anchor's time".

:data:`GOALS` is the one list of the performance goals: the rows take their
goal from it, the accuracy and memory notes check theirs against it, and the
documentation's goals table is generated from it (``docs/make_figures.py``),
so a page cannot promise what the bench does not check.
"""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any, NamedTuple

import numpy as np

import mseplug
from mseplug.cli.timing import compare, peak_bytes
from mseplug.loss.builtin import BUILTINS
from mseplug.loss.record import Loss


class Size(NamedTuple):
    """Input sizes and timing effort of one run (``--quick`` or full)."""

    large: int  # NumPy, torch forward+backward, Dask
    jit: int  # JAX under jit
    repeat: int
    budget: float  # seconds per timing


@dataclass(frozen=True)
class Goal:
    """One goal of the performance contract, as ``mseplug bench`` applies it.

    ``measure`` is ``"speed"`` (the row's ratio, anchor time / mseplug time, is
    at least ``value``), ``"memory"`` (the inputs' bytes / mseplug's peak extra
    bytes is at least ``value``) or ``"accuracy"`` (the relative error is at most
    ``value``). ``words`` says the same for a reader.
    """

    key: str
    backend: str
    case: str
    anchor: str
    value: float
    words: str
    measure: str = "speed"

    def met(self, measured: float) -> bool:
        return measured <= self.value if self.measure == "accuracy" else measured >= self.value

    @property
    def text(self) -> str:
        """The ``goal`` column of a row: ``'>= 3.5 (at least 3.5x faster)'``."""
        sign = "<=" if self.measure == "accuracy" else ">="
        return f"{sign} {self.value:.3g} ({self.words})"


#: The size the goals of the large rows are set for; smaller runs (--quick) only report.
GOAL_SIZE = 10**7

GOALS: tuple[Goal, ...] = (
    Goal("numpy-mse-float32", "numpy", "MSE, 10⁷ float32", "np.mean((a-b)**2)", 3.0,
         "at least 3x faster"),
    Goal("numpy-mse-float32-dot", "numpy", "MSE, 10⁷ float32", "np.dot(a, b) (bandwidth)", 0.9,
         "at least 0.9 of np.dot's speed"),
    Goal("numpy-mae-float32", "numpy", "MAE, 10⁷ float32", "np.mean(np.abs(a-b))", 3.0,
         "at least 3x faster"),
    Goal("numpy-mse-float64", "numpy", "MSE, 10⁷ float64", "np.mean((a-b)**2)", 3.5,
         "at least 3.5x faster"),
    Goal("numpy-mse-float64-dot", "numpy", "MSE, 10⁷ float64", "np.dot(a, b) (bandwidth)", 0.8,
         "at least 0.8 of np.dot's speed"),
    Goal("numpy-mae-float64", "numpy", "MAE, 10⁷ float64", "np.mean(np.abs(a-b))", 3.0,
         "at least 3x faster"),
    Goal("numpy-mse-small", "numpy", "MSE, 8 float64", "np.mean((a-b)**2)", 1.2,
         "at least 1.2x faster"),
    Goal("sklearn-mse-small", "sklearn", "MSE, 8 float64", "sklearn mean_squared_error", 25.0,
         "at least 25x faster"),
    Goal("torch-forward-64", "torch", "MSE and MAE forward, 64 float32", "F.mse_loss, F.l1_loss",
         1.0, "no slower"),
    Goal("torch-forward-small", "torch", "MSE and MAE forward, 8 and 1000 float32",
         "F.mse_loss, F.l1_loss", 1 / 1.1, "at most 1.1x slower"),
    Goal("torch-weighted-64", "torch", "weighted MSE forward, 64 float32",
         "(w*(p-t)**2).sum()/w.sum()", 1 / 1.5, "at most 1.5x slower"),
    Goal("torch-accumulator-64", "torch", "Accumulator.update of MSE, 64 float32 (state on the "
         "device)", "torchmetrics MeanSquaredError.update", 1.0, "no slower"),
    Goal("torch-grad-64", "torch", "mseplug.grad of MSE, 64 float32 (input with or without "
         "requires_grad)", "autograd.grad of F.mse_loss", 0.5, "at most 2x slower"),
    Goal("torch-step", "torch", "MSE forward+backward, 10⁷ float32", "F.mse_loss", 1.3,
         "at least 1.3x faster"),
    Goal("jax-jit", "jax", "MSE and MAE under jit, float32", "jit of the jnp expression", 0.97,
         "at least 0.97 of its speed"),
    Goal("accuracy-float32", "numpy", "MSE, 10⁷ float32: relative error",
         "the exact value (float64 math.fsum)", 1e-6, "within 1e-6 relative", "accuracy"),
    Goal("memory-float32", "numpy", "MSE, 10⁷ float32: peak extra memory",
         "the inputs' size", 20.0, "at least 20x less than the inputs", "memory"),
)


def _family() -> tuple[Loss, ...]:
    """The built-in metrics scikit-learn has a function for (their records' ``sklearn`` anchor)."""
    return tuple(loss for loss in BUILTINS if "sklearn" in loss.anchors)


#: Each family row's goal at 10⁷ float64: at least 2x faster than scikit-learn's function.
FAMILY_GOAL = 2.0
GOALS += tuple(
    Goal(f"family-{loss.name}", "sklearn", f"{loss.name}, 10⁷ float64",
         f"sklearn {loss.anchors['sklearn']}", FAMILY_GOAL, "at least 2x faster")
    for loss in _family())
GOAL = {goal.key: goal for goal in GOALS}
#: The parameters a family row times its loss at (else the defaults): Tweedie's compound
#: Poisson-Gamma power, not its default 0 (which is the MSE).
FAMILY_PARAMS: dict[str, dict[str, float]] = {"tweedie_deviance": {"power": 1.5}}
#: Repeats of a family row (scikit-learn takes 0.1-3 s per call at 10⁷ elements): enough for
#: a median that one disturbed timing on a shared machine does not move.
FAMILY_REPEAT = 7
#: The largest relative difference of a family row's two values (float64).
FAMILY_RTOL = 1e-12


@dataclass
class Row:
    """One line of the table, in the shared ``mseplug bench --json`` format."""

    backend: str
    case: str
    anchor: str
    mseplug_s: float
    anchor_s: float
    goal: str = ""
    goal_value: float | None = None
    mseplug_bytes: int | None = None  # peak extra memory of one call (tracemalloc; NumPy rows)
    anchor_bytes: int | None = None
    #: The largest relative difference of the two sides' values, where the row compares them.
    difference: float | None = None

    @property
    def ratio(self) -> float:
        return self.anchor_s / self.mseplug_s

    @property
    def met(self) -> bool | None:
        return None if self.goal_value is None else self.ratio >= self.goal_value

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio, "met": self.met}


def count(n: int) -> str:
    """``10**7`` as ``'1e7'``."""
    return f"{n:.0e}".replace("e+0", "e").replace("e+", "e")


def _row(backend: str, case: str, anchor: str, times: tuple[float, float],
         goal: Goal | None = None) -> Row:
    if goal is None:
        return Row(backend, case, anchor, times[0], times[1])
    return Row(backend, case, anchor, times[0], times[1], goal.text, goal.value)


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _numpy_mse(a: np.ndarray, b: np.ndarray) -> Any:
    return np.mean((a - b) ** 2)


def _numpy_mae(a: np.ndarray, b: np.ndarray) -> Any:
    return np.mean(np.abs(a - b))


def _timed(size: Size, ours: Any, theirs: Any, *args: Any) -> tuple[float, float]:
    """``compare`` of ``ours(*args)`` and ``theirs(*args)``."""
    return compare(partial(ours, *args), partial(theirs, *args), repeat=size.repeat,
                   budget=size.budget)


def _with_memory(row: Row, ours: Any, theirs: Any, *args: Any) -> Row:
    """``row`` with the peak extra memory of one call of each side (tracemalloc sees NumPy)."""
    row.mseplug_bytes, row.anchor_bytes = peak_bytes(partial(ours, *args)), peak_bytes(
        partial(theirs, *args))
    return row


def numpy_rows(size: Size) -> list[Row]:
    rng = np.random.default_rng(0)
    rows = []
    n = size.large
    for dtype in (np.float32, np.float64):
        a, b = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
        name = np.dtype(dtype).name
        case = f"n={count(n)} {name}"

        # The goals are for 10^7 elements (out of cache); --quick's smaller inputs only report.
        def goal(key: str) -> Goal | None:
            return GOAL[key] if n >= GOAL_SIZE else None

        rows += [
            _with_memory(_row("numpy", f"mse {case}", "np.mean((a-b)**2)",
                              _timed(size, mseplug.mse, _numpy_mse, a, b),
                              goal(f"numpy-mse-{name}")),
                         mseplug.mse, _numpy_mse, a, b),
            _row("numpy", f"mse {case}", "np.dot(a, b) (bandwidth)",
                 _timed(size, mseplug.mse, np.dot, a, b), goal(f"numpy-mse-{name}-dot")),
            _with_memory(_row("numpy", f"mae {case}", "np.mean(np.abs(a-b))",
                              _timed(size, mseplug.mae, _numpy_mae, a, b), goal(f"numpy-mae-{name}")),
                         mseplug.mae, _numpy_mae, a, b),
        ]
    small = rng.standard_normal(8), rng.standard_normal(8)
    rows.append(_row("numpy", "mse n=8 float64", "np.mean((a-b)**2)",
                     _timed(size, mseplug.mse, _numpy_mse, *small), GOAL["numpy-mse-small"]))
    return rows


def sklearn_rows(size: Size) -> list[Row]:
    from sklearn.metrics import mean_absolute_error, mean_squared_error

    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(8), rng.standard_normal(8)
    return [
        _row("sklearn", "mse n=8 float64", "sklearn mean_squared_error",
             _timed(size, mseplug.mse, mean_squared_error, a, b), GOAL["sklearn-mse-small"]),
        _row("sklearn", "mae n=8 float64", "sklearn mean_absolute_error",
             _timed(size, mseplug.mae, mean_absolute_error, a, b)),
    ]


def family_data(loss: Loss, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Targets and predictions for ``loss``: correlated normals, or positive values (0.5 to 5)
    where its domain needs them."""
    rng = np.random.default_rng(5)
    if loss.domain is not None:
        y_true = rng.uniform(0.5, 5.0, size=n)
        return y_true, y_true * rng.uniform(0.7, 1.3, size=n)
    y_true = rng.standard_normal(n)
    return y_true, y_true + 0.3 * rng.standard_normal(n)


def relative_difference(ours: Any, theirs: Any) -> float:
    """``|ours - theirs| / |theirs|`` (0 for two zeros; inf where one is not finite)."""
    a, b = float(ours), float(theirs)
    if a == b:
        return 0.0
    if not (np.isfinite(a) and np.isfinite(b)):
        return float("inf")
    return abs(a - b) / abs(b)


def family_rows(size: Size) -> list[Row]:
    """Each metric of the regression family that scikit-learn has, against its function on the
    same float64 data, and the relative difference of their values (at most
    :data:`FAMILY_RTOL`)."""
    import sklearn.metrics

    n = size.large
    rows = []
    timing = size._replace(repeat=min(size.repeat, FAMILY_REPEAT))
    for loss in _family():
        y_true, y_pred = family_data(loss, n)
        params = FAMILY_PARAMS.get(loss.name, {})
        function: Any = mseplug.get_loss(loss.name)
        ours = partial(function, **params)
        theirs = partial(getattr(sklearn.metrics, loss.anchors["sklearn"]), **params)
        words = "".join(f", {key}={value}" for key, value in params.items())
        row = _row("sklearn", f"{loss.name}{words} n={count(n)} float64",
                   f"sklearn {loss.anchors['sklearn']}",
                   _timed(timing, ours, theirs, y_true, y_pred),
                   GOAL[f"family-{loss.name}"] if n >= GOAL_SIZE else None)
        row.difference = relative_difference(ours(y_true, y_pred), theirs(y_true, y_pred))
        rows.append(row)
    return rows


def torch_rows(size: Size) -> list[Row]:
    import torch
    import torch.nn.functional as F

    generator = torch.Generator().manual_seed(0)
    rows = []
    for n in (8, 64, 1000):
        t, p = torch.randn(n, generator=generator), torch.randn(n, generator=generator)
        for ours, anchor, function in ((mseplug.mse, "F.mse_loss", F.mse_loss),
                                       (mseplug.mae, "F.l1_loss", F.l1_loss)):
            times = compare(partial(ours, t, p), partial(function, p, t), repeat=size.repeat,
                            budget=size.budget)  # torch's order: (input, target)
            goal = GOAL["torch-forward-64" if n == 64 else "torch-forward-small"]
            rows.append(_row("torch", f"{ours.loss.name} forward n={n} float32", anchor, times,
                             goal))
    t, p, w = (torch.rand(64, generator=generator) for _ in range(3))
    rows.append(_row("torch", "mse weighted forward n=64 float32", "(w*(p-t)**2).sum()/w.sum()",
                     compare(lambda: mseplug.mse(t, p, sample_weight=w),
                             lambda: (w * (p - t) ** 2).sum() / w.sum(), repeat=size.repeat,
                             budget=size.budget), GOAL["torch-weighted-64"]))
    if installed("torchmetrics"):
        rows.append(_accumulator_row(size, t, p))
    leaf = p.clone().requires_grad_(True)
    for x, words in ((p, ""), (leaf, ", input requires grad")):
        rows.append(_row("torch", f"mseplug.grad mse n=64 float32{words}",
                         "autograd.grad of F.mse_loss",
                         compare(partial(mseplug.grad, "mse", t, x),
                                 lambda: torch.autograd.grad(F.mse_loss(leaf, t), leaf),
                                 repeat=size.repeat, budget=size.budget), GOAL["torch-grad-64"]))
    t = torch.randn(size.large, generator=generator)
    p = torch.randn(size.large, generator=generator).requires_grad_(True)

    def step(loss: Any) -> Any:
        def run() -> None:
            p.grad = None
            loss().backward()
        return run

    rows.append(_row("torch", f"mse forward+backward n={count(size.large)} float32", "F.mse_loss",
                     compare(step(lambda: mseplug.mse(t, p)), step(lambda: F.mse_loss(p, t)),
                             repeat=size.repeat, budget=size.budget),
                     GOAL["torch-step"] if size.large >= GOAL_SIZE else None))
    return rows


def _accumulator_row(size: Size, t: Any, p: Any) -> Row:
    """One streaming update of 64 float32 values: mseplug's state stays on the tensors' device
    in float64 (read only by compute), torchmetrics' in the batch dtype."""
    from torchmetrics import MeanSquaredError

    ours, theirs = mseplug.Accumulator("mse"), MeanSquaredError()
    t, p = t[:64].clone(), p[:64].clone()
    times = compare(lambda: ours.update(t, p), lambda: theirs.update(p, t), repeat=size.repeat,
                    budget=size.budget)
    return _row("torch", "Accumulator.update mse n=64 float32",
                "torchmetrics MeanSquaredError.update", times, GOAL["torch-accumulator-64"])


def jax_rows(size: Size) -> list[Row]:
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(2)
    a = jnp.asarray(rng.standard_normal(size.jit), dtype=jnp.float32)
    b = jnp.asarray(rng.standard_normal(size.jit), dtype=jnp.float32)
    rows = []
    for loss, hand in ((mseplug.mse, _jnp_mse), (mseplug.mae, _jnp_mae)):
        ours, theirs = jax.jit(loss), jax.jit(hand)
        rows.append(_row("jax", f"{loss.loss.name} jit n={count(size.jit)} float32",
                         "jit of the jnp expression",
                         _timed(size, _waited(ours), _waited(theirs), a, b), GOAL["jax-jit"]))
    return rows


def _jnp_mse(a: Any, b: Any) -> Any:
    import jax.numpy as jnp

    return jnp.mean((a - b) ** 2)


def _jnp_mae(a: Any, b: Any) -> Any:
    import jax.numpy as jnp

    return jnp.mean(jnp.abs(a - b))


def _waited(function: Any) -> Any:
    """``function`` that waits for its JAX result (dispatch is asynchronous)."""
    def call(*args: Any) -> Any:
        return function(*args).block_until_ready()
    return call


def dask_rows(size: Size) -> list[Row]:
    import dask.array as da

    chunks = max(size.large // 8, 1)
    a = da.random.default_rng(3).standard_normal(size.large, chunks=chunks).persist()
    b = da.random.default_rng(4).standard_normal(size.large, chunks=chunks).persist()
    def ours(a: Any, b: Any) -> Any:
        return mseplug.mse(a, b).compute()

    def theirs(a: Any, b: Any) -> Any:
        return da.mean((a - b) ** 2).compute()

    return [_row("dask", f"mse n={count(size.large)} float64, {size.large // chunks} chunks",
                 "da.mean((a-b)**2)", _timed(size, ours, theirs, a, b))]


#: Backend name, the module that must be installed, the function giving its rows.
CASES = (("numpy", "numpy", numpy_rows), ("sklearn", "sklearn", sklearn_rows),
         ("family", "sklearn", family_rows), ("torch", "torch", torch_rows),
         ("jax", "jax", jax_rows), ("dask", "dask", dask_rows))

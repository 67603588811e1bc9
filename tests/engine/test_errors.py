"""Bad input: a typed error that names the argument and what was seen, on every backend.

``REGISTRY`` holds the distinct bad inputs, one :class:`Bad` each. Every one
runs on every backend of the ``backend`` fixture where it applies (elsewhere it
is skipped with the reason), and through each entry point it lists (the four
losses, ``grad``, ``value_and_grad``). Each asserts the error type, words of
the message (the argument's name and, where there is one, what was seen), and
that the error is raised by mseplug itself, never from deep inside a framework.
``test_registry_counts_distinct_bad_inputs`` keeps the count visible.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from libraries import Lib
from loss_table import NAMES

import mseplug

GOOD = np.arange(1, 7, dtype=np.float64)  # positive: inside every loss's domain
MSEPLUG_DIR = Path(mseplug.__file__).resolve().parent
ALL = ("numpy", "torch", "jax", "array_api_strict")
NOT_JAX = ("numpy", "torch", "array_api_strict")
NOT_TORCH = ("numpy", "jax", "array_api_strict")

#: Entry points a case can run through. "grad"/"value_and_grad" differentiate MAE/Huber.
ENTRY: dict[str, Callable[..., Any]] = {
    **{name: mseplug.get_loss(name) for name in NAMES},
    "grad": functools.partial(mseplug.grad, "mae"),
    "value_and_grad": functools.partial(mseplug.value_and_grad, "huber"),
}
EVERY = (*NAMES, "grad")
GRADS = ("grad", "value_and_grad")
ROOTS = tuple(name for name in NAMES if mseplug.get_loss(name).loss.root)
NO_ROOT = (*(name for name in NAMES if name not in ROOTS), "grad")


@dataclass(frozen=True)
class Bad:
    """One distinct bad input: how to make the call, and the error it must give."""

    id: str
    call: Callable[[Lib, Callable[..., Any]], Any]  # (backend, entry point) -> makes the bad call
    error: type[Exception]
    words: tuple[str, ...]  # each must appear in the message
    entries: tuple[str, ...] = EVERY
    backends: tuple[str, ...] = ALL  # where the input exists; skipped elsewhere
    why: str = ""  # the skip reason for the other backends
    needs: tuple[str, ...] = ()  # libraries that must be installed


REGISTRY: dict[str, Bad] = {}


def bad(id: str, call: Callable[[Lib, Callable[..., Any]], Any], error: type[Exception],
        *words: str, **extra: Any) -> None:
    assert id not in REGISTRY, f"duplicate bad-input id {id!r}"
    REGISTRY[id] = Bad(id, call, error, words, **extra)


def with_args(build: Callable[[Lib], dict[str, Any]]) -> Callable[[Lib, Callable[..., Any]], Any]:
    """A call on good 6-sample inputs of the backend, with ``build(lib)`` overriding arguments."""

    def call(lib: Lib, entry: Callable[..., Any]) -> Any:
        kwargs = {"y_true": lib.asarray(GOOD), "y_pred": lib.asarray(GOOD + 1)}
        kwargs.update(build(lib))
        return entry(kwargs.pop("y_true"), kwargs.pop("y_pred"), **kwargs)

    return call


def simple(id: str, build: Callable[[Lib], dict[str, Any]], error: type[Exception],
           *words: str, **extra: Any) -> None:
    bad(id, with_args(build), error, *words, **extra)


def weights(values: list[float]) -> Callable[[Lib], dict[str, Any]]:
    return lambda lib: {"sample_weight": lib.asarray(np.array(values))}


# -- shapes ----------------------------------------------------------------------------------
simple("shapes differ", lambda b: dict(y_true=b.asarray(np.zeros(32)), y_pred=b.asarray(np.zeros((32, 4)))),
       ValueError, "y_true (32,)", "y_pred (32, 4)", "shapes differ")
simple("transposed", lambda b: dict(y_true=b.asarray(np.zeros((3, 1))), y_pred=b.asarray(np.zeros((1, 3)))),
       ValueError, "y_true (3, 1)", "y_pred (1, 3)")
simple("row vs column", lambda b: dict(y_true=b.asarray(np.zeros((1, 5))), y_pred=b.asarray(np.zeros(5))),
       ValueError, "y_true (1, 5)", "y_pred (5,)")
simple("0-d vs 1-d", lambda b: dict(y_true=b.asarray(np.float64(1.0)), y_pred=b.asarray(np.zeros(1))),
       ValueError, "y_true ()", "y_pred (1,)", "shapes differ")
simple("1-d vs 0-d", lambda b: dict(y_true=b.asarray(np.zeros(1)), y_pred=b.asarray(np.float64(1.0))),
       ValueError, "y_true (1,)", "y_pred ()", "shapes differ")
simple("empty", lambda b: dict(y_true=b.asarray(np.zeros(0)), y_pred=b.asarray(np.zeros(0))),
       ValueError, "empty", "(0,)")
simple("empty 2-d", lambda b: dict(y_true=b.asarray(np.zeros((0, 3))), y_pred=b.asarray(np.zeros((0, 3)))),
       ValueError, "empty", "(0, 3)")
simple("different n", lambda b: dict(y_true=b.asarray(np.zeros(5)), y_pred=b.asarray(np.zeros(6))),
       ValueError, "y_true (5,)", "y_pred (6,)", "shapes differ")
simple("(n,1) vs (n,2)",
       lambda b: dict(y_true=b.asarray(np.zeros((4, 1))), y_pred=b.asarray(np.zeros((4, 2)))),
       ValueError, "y_true (4, 1)", "y_pred (4, 2)", "shapes differ")
simple("rank-3 mismatch",
       lambda b: dict(y_true=b.asarray(np.zeros((4, 2, 3))), y_pred=b.asarray(np.zeros((4, 3, 2)))),
       ValueError, "y_true (4, 2, 3)", "y_pred (4, 3, 2)", "shapes differ")

# -- sample weights --------------------------------------------------------------------------
simple("weights too short", lambda b: dict(sample_weight=b.asarray(np.ones(5))),
       ValueError, "sample_weight (5,)", "6 samples")
simple("weights 2-d", lambda b: dict(sample_weight=b.asarray(np.ones((6, 1)))),
       ValueError, "sample_weight (6, 1)", "(6,)")
simple("weights (2,) for a 0-d pair",
       lambda b: dict(y_true=b.asarray(np.float64(1)), y_pred=b.asarray(np.float64(2)),
                      sample_weight=b.asarray(np.ones(2))),
       ValueError, "sample_weight (2,)", "1 samples")
simple("negative weight", weights([1, 1, -1, 1, 1, 1]), ValueError, "sample_weight", "negative", "-1")
simple("zero weights", weights([0] * 6), ValueError, "sample_weight", "sums to 0")
for policy in ("propagate", "raise", "omit"):  # a non-finite weight is an error under every policy
    for label, value, seen in (("NaN", math.nan, "NaN"), ("inf", math.inf, "infinite"),
                               ("-inf", -math.inf, "infinite")):
        suffix = "" if policy == "propagate" else f" [nan_policy={policy}]"
        simple(f"{label} weight{suffix}",
               lambda b, value=value, policy=policy: dict(
                   sample_weight=b.asarray(np.array([1, 1, value, 1, 1, 1])), nan_policy=policy),
               ValueError, "sample_weight", seen)
simple("complex weights", lambda b: dict(sample_weight=b.asarray(np.ones(6), "complex128")),
       TypeError, "sample_weight", "complex")
simple("string weight", lambda b: dict(sample_weight="abc"), TypeError, "sample_weight", "str")
simple("string-array weights", lambda b: dict(sample_weight=np.array(list("abcdef"))),
       TypeError, "sample_weight", "string")

# -- options ---------------------------------------------------------------------------------
simple("reduction", lambda b: dict(reduction="average"), ValueError, "reduction", "'average'")
simple("reduction type", lambda b: dict(reduction=1), TypeError, "reduction", "int")
simple("nan_policy", lambda b: dict(nan_policy="ignore"), ValueError, "nan_policy", "'ignore'")
simple("nan_policy type", lambda b: dict(nan_policy=None), TypeError, "nan_policy", "NoneType")
simple("multioutput", lambda b: dict(multioutput="variance"),
       ValueError, "multioutput", "variance")
simple("multioutput None", lambda b: dict(multioutput=None), TypeError, "multioutput", "None")
simple("multioutput object", lambda b: dict(multioutput=object()), TypeError, "multioutput", "object")
simple("output weights length", lambda b: dict(multioutput=[0.5, 0.5]),
       ValueError, "multioutput", "2 weights", "1 outputs")


def two_outputs(lib: Lib, **options: Any) -> dict[str, Any]:
    y = np.arange(1.0, 9.0).reshape(4, 2)  # positive: inside every loss's domain
    return dict(y_true=lib.asarray(y), y_pred=lib.asarray(y + 1), **options)


simple("output weights negative", lambda b: two_outputs(b, multioutput=[-1.0, 2.0]),
       ValueError, "multioutput weights", ">= 0", "-1")
simple("output weights all zero", lambda b: two_outputs(b, multioutput=[0.0, 0.0]),
       ValueError, "multioutput weights", "not all zero", "[0., 0.]")
simple("output weights NaN", lambda b: two_outputs(b, multioutput=[math.nan, 1.0]),
       ValueError, "multioutput weights", "finite", "nan")
simple("output weights with reduction none",
       lambda b: two_outputs(b, multioutput=[1.0, 2.0], reduction="none"),
       ValueError, "multioutput", "reduction='none'", entries=NO_ROOT)
simple("rmse reduction sum", lambda b: dict(reduction="sum"), ValueError, "takes the root",
       "reduction", "'sum'",
       entries=ROOTS)
simple("rmse reduction none", lambda b: dict(reduction="none"), ValueError, "takes the root",
       "reduction", "'none'",
       entries=ROOTS)
for delta in (0.0, -1.0, math.nan, math.inf, -math.inf):
    simple(f"delta {delta}", lambda b, delta=delta: dict(delta=delta), ValueError, "delta", f"{delta}",
           entries=("huber", "value_and_grad"))
simple("delta string", lambda b: dict(delta="big"), TypeError, "delta", "str",
       entries=("huber", "value_and_grad"))
simple("delta None", lambda b: dict(delta=None), TypeError, "delta", "NoneType",
       entries=("huber", "value_and_grad"))
simple("unknown backend", lambda b: dict(backend="tensorflow"), ValueError, "backend", "tensorflow")
simple("backend of a wrong type", lambda b: dict(backend=3), TypeError, "backend", "int")

# -- NaN under nan_policy="raise" ------------------------------------------------------------
NAN = np.array([0, 1, np.nan, 3, 4, 5.0])
simple("NaN in y_pred with raise", lambda b: dict(y_pred=b.asarray(NAN), nan_policy="raise"),
       ValueError, "y_pred", "NaN", "nan_policy='raise'")
simple("NaN in y_true with raise", lambda b: dict(y_true=b.asarray(NAN), nan_policy="raise"),
       ValueError, "y_true", "NaN", "nan_policy='raise'")
simple("NaN in both with raise",
       lambda b: dict(y_true=b.asarray(NAN), y_pred=b.asarray(NAN[::-1].copy()), nan_policy="raise"),
       ValueError, "y_true", "NaN", "nan_policy='raise'")

# -- non-numeric inputs ----------------------------------------------------------------------
NATIVE_ONLY = {"backends": ("numpy",), "why": "only NumPy has object, string and datetime dtypes"}
for position in ("y_true", "y_pred"):
    for label, value, seen in (("None", None, "is None"), ("str", "abc", "is a str"),
                               ("bytes", b"ab", "is a bytes")):
        simple(f"{position} {label}", lambda b, p=position, x=value: {p: x}, TypeError, position, seen)
    simple(f"{position} complex", lambda b, p=position: {p: b.asarray(GOOD, "complex128")},
           TypeError, position, "complex")
    # object/string/datetime arrays as the backend's own dtype: NumPy only
    for label, value, seen in (
        ("object array", np.array([object()] * 6), "object"),
        ("string array", np.array(list("abcdef")), "string"),
        ("bytes array", np.array([b"a"] * 6), "bytes"),
        ("datetime array", np.arange(6).astype("datetime64[D]"), "datetime"),
    ):
        simple(f"{position} {label}", lambda b, p=position, x=value: {p: x}, TypeError, position, seen,
               **NATIVE_ONLY)
    simple(f"{position} list with a string", lambda b, p=position: {p: [1.0, 2, 3, 4, 5, "x"]},
           TypeError, position, "string")
    simple(f"{position} ragged list", lambda b, p=position: {p: [[1.0, 2.0], [3.0]] * 3},
           TypeError, position, "list", "cannot be converted")
# A NumPy object/string array as y_true is converted to y_pred's library: rejected on the way.
FOREIGN = {"backends": ("torch", "jax", "array_api_strict"),
           "why": "for NumPy these are the cases of its own object and string arrays"}
simple("y_true NumPy object array, foreign y_pred", lambda b: {"y_true": np.array([object()] * 6)},
       TypeError, "y_true", "object", **FOREIGN)
simple("y_true NumPy string array, foreign y_pred", lambda b: {"y_true": np.array(list("abcdef"))},
       TypeError, "y_true", "string", **FOREIGN)


# -- mixed frameworks and devices ------------------------------------------------------------
def tracer_call(position: str) -> Callable[[Lib, Callable[..., Any]], Any]:
    """Inside ``jax.jit``, pass a JAX tracer as ``position`` next to another library's arrays."""

    def call(lib: Lib, entry: Callable[..., Any]) -> Any:
        import jax
        import jax.numpy as jnp

        def inside(traced: Any) -> Any:
            kwargs = {"y_true": lib.asarray(GOOD), "y_pred": lib.asarray(GOOD + 1), position: traced}
            return entry(kwargs.pop("y_true"), kwargs.pop("y_pred"), **kwargs)

        return jax.jit(inside)(jnp.ones(6))

    return call


TRACER = {"backends": NOT_JAX, "why": "a JAX y_pred takes the tracer as it is", "needs": ("jax",)}
bad("y_true JAX tracer inside jit", tracer_call("y_true"), TypeError,
    "y_true", "traced JAX array", "cannot be converted", **TRACER)
bad("sample_weight JAX tracer inside jit", tracer_call("sample_weight"), TypeError,
    "sample_weight", "traced JAX array", **TRACER)


def torch_on(device: str, position: str) -> Callable[[Lib], dict[str, Any]]:
    def build(lib: Lib) -> dict[str, Any]:
        import torch

        value = np.ones(6) if position == "sample_weight" else GOOD
        return {position: torch.as_tensor(value).to(device)}

    return build


def no_cuda() -> bool:
    return importlib.util.find_spec("torch") is None or not __import__("torch").cuda.is_available()


TORCH_ONLY = {"backends": ("torch",), "why": "devices are torch's (its tensors on two devices)",
              "needs": ("torch",)}
for position in ("y_true", "sample_weight"):
    simple(f"{position} on meta device, y_pred on cpu", torch_on("meta", position), ValueError,
           position, "device meta", "device cpu", f"{position}.to(y_pred.device)", **TORCH_ONLY)
simple("y_pred on meta device, y_true on cpu",
       lambda b: dict(y_true=b.asarray(GOOD), y_pred=torch_on("meta", "y_pred")(b)["y_pred"]),
       ValueError, "y_true", "device cpu", "device meta", **TORCH_ONLY)
simple("y_true on cuda, y_pred on cpu", torch_on("cuda", "y_true"), ValueError,
       "y_true", "device cuda", "device cpu", **TORCH_ONLY)
simple("y_true data-less torch meta tensor, foreign y_pred", torch_on("meta", "y_true"), TypeError,
       "y_true", "Tensor", "cannot be converted", backends=NOT_TORCH,
       why="for a torch y_pred this is the device case", needs=("torch",))

# -- grad / value_and_grad and the loss argument ---------------------------------------------
simple("grad with reduction none", lambda b: dict(reduction="none"), ValueError,
       "grad needs a scalar loss", "reduction='none'", entries=GRADS)
simple("grad with raw_values over several outputs", lambda b: two_outputs(b, multioutput="raw_values"),
       ValueError, "grad needs a scalar loss", "raw_values", "(2,)", entries=GRADS)


def loss_call(loss: Any) -> Callable[[Lib, Callable[..., Any]], Any]:
    def call(lib: Lib, entry: Callable[..., Any]) -> Any:
        return entry.func(loss, lib.asarray(GOOD), lib.asarray(GOOD + 1))  # type: ignore[attr-defined]

    return call


bad("unknown loss name", loss_call("smape"), ValueError, "loss", "'smape'", "mse", entries=GRADS)
bad("loss of a wrong type", loss_call(3), TypeError, "loss", "got 3", entries=GRADS)
bad("loss a foreign function", loss_call(np.mean), TypeError, "loss", "mean", entries=GRADS)


# -- the matrix ------------------------------------------------------------------------------
PARAMS = [pytest.param(case, entry, id=f"{case.id}-{entry}")
          for case in REGISTRY.values() for entry in case.entries]


def innermost_file(info: pytest.ExceptionInfo[BaseException]) -> Path:
    tb = info.tb
    while tb.tb_next is not None:
        tb = tb.tb_next
    return Path(tb.tb_frame.f_code.co_filename).resolve()


@pytest.mark.parametrize("case, entry", PARAMS)
def test_bad_input_matrix(backend: Lib, case: Bad, entry: str) -> None:
    if backend.name not in case.backends:
        pytest.skip(f"{case.id!r} does not apply to {backend.name}: {case.why}")
    for library in case.needs:
        if importlib.util.find_spec(library) is None:
            pytest.skip(f"{library} is not installed")
    if "cuda" in case.id and no_cuda():
        pytest.skip("no CUDA device")
    with pytest.raises(case.error) as info:
        case.call(backend, ENTRY[entry])
    message = str(info.value)
    for word in case.words:
        assert word in message, f"{word!r} not in {message!r}"
    where = innermost_file(info)
    assert where.is_relative_to(MSEPLUG_DIR), f"raised from {where}, not by mseplug: {message}"


def test_registry_counts_distinct_bad_inputs() -> None:
    ids = [case.id for case in REGISTRY.values()]
    assert len(set(ids)) == len(ids)
    assert len(REGISTRY) >= 40, f"only {len(REGISTRY)} distinct bad inputs"
    assert len(PARAMS) >= 3 * len(REGISTRY) // 2  # most cases run through several entry points
    # Each error type is exercised, and every message check names something.
    assert {case.error for case in REGISTRY.values()} == {ValueError, TypeError}
    assert all(case.words for case in REGISTRY.values())


# -- what is *not* an error ------------------------------------------------------------------
def test_torch_tensor_requiring_grad_as_numpy_y_true_is_detached() -> None:
    torch = pytest.importorskip("torch")
    y_true = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
    y_pred = np.array([2.0, 2.0, 5.0])
    value = mseplug.mse(y_true, y_pred)
    assert isinstance(value, np.ndarray) and value.dtype == np.float64
    assert float(value) == pytest.approx(5.0 / 3.0, rel=1e-15)
    g = mseplug.grad("mse", y_true, y_pred)
    np.testing.assert_allclose(g, [2 / 3, 0.0, 4 / 3], rtol=1e-15)
    assert y_true.grad is None and y_true.requires_grad and y_true.grad_fn is None
    weight = torch.ones(3, requires_grad=True)
    assert float(mseplug.mae(y_true, y_pred, sample_weight=weight)) == pytest.approx(1.0)


def test_concrete_jax_y_true_with_numpy_y_pred_is_converted() -> None:
    jnp = pytest.importorskip("jax.numpy")
    value = mseplug.mse(jnp.asarray([1.0, 2.0]), np.array([1.0, 4.0]))
    assert isinstance(value, np.ndarray) and float(value) == 2.0


@pytest.mark.parametrize(
    "value, words",
    [(None, ["y_pred is None"]), ("abc", ["y_pred is a str"]),
     (np.array([1 + 2j, 3j]), ["y_pred", "complex"]), (np.array(["a", "b"]), ["y_pred", "string"]),
     (np.array([object(), object()]), ["y_pred", "object"]), ([1.0, "x"], ["y_pred"])],
    ids=["None", "str", "complex", "strings", "objects", "mixed list"],
)
def test_non_numeric_inputs_are_type_errors(value, words) -> None:
    with pytest.raises(TypeError) as info:
        mseplug.mse(np.zeros(2), value)
    for word in words:
        assert word in str(info.value)
    with pytest.raises(TypeError, match="y_true"):
        mseplug.mse(value, np.zeros(2))


def test_rmse_needs_mean_and_delta_must_be_positive() -> None:
    with pytest.raises(ValueError, match=r"rmse .*needs reduction='mean'"):
        mseplug.rmse(GOOD, GOOD, reduction="sum")
    for delta in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="delta"):
            mseplug.huber(GOOD, GOOD, delta=delta)
    with pytest.raises(TypeError, match="delta"):
        mseplug.huber(GOOD, GOOD, delta="big")


def test_output_weights_are_checked() -> None:
    y = np.zeros((4, 2))
    with pytest.raises(ValueError, match="multioutput weights"):
        mseplug.mse(y, y, multioutput=[-1.0, 2.0])
    with pytest.raises(ValueError, match="reduction='none'"):
        mseplug.mse(y, y, multioutput=[1.0, 2.0], reduction="none")
    with pytest.raises(TypeError, match="multioutput"):
        mseplug.mse(y, y, multioutput=object())


def test_never_broadcast_to_n_by_n() -> None:
    y_true = np.arange(4.0)
    y_pred = np.arange(4.0)[:, None] + 1
    assert mseplug.mse(y_true, y_pred, reduction="none").shape == (4, 1)
    assert float(mseplug.mse(y_true, y_pred)) == 1.0  # broadcasting would give 3.5


# -- overflow: inf (never a finite wrong number), or the right value -------------------------
OVERFLOW = {"float32": 1e20, "float16": 300.0}  # squares beyond float32's / float16's range


@pytest.mark.parametrize("dtype", sorted(OVERFLOW))
@pytest.mark.parametrize("loss, reduction", [("mse", "mean"), ("mse", "sum"), ("mse", "none"),
                                             ("rmse", "mean"), ("huber", "sum"), ("mae", "sum")])
def test_overflow_is_inf_or_right_never_a_finite_wrong_number(backend, dtype, loss, reduction) -> None:
    if backend.name == "array_api_strict" and dtype == "float16":
        pytest.skip("array_api_strict has no float16")
    big = OVERFLOW[dtype]
    y_true = np.array([0.0, -big, big, 0.0])
    y_pred = np.array([big, big, -big, 0.5])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = backend.to_numpy(getattr(mseplug, loss)(
            backend.asarray(y_true, dtype), backend.asarray(y_pred, dtype), reduction=reduction))
    r = y_pred - y_true  # exact in float64
    e = {"mse": r**2, "rmse": r**2, "mae": np.abs(r), "huber": np.where(
        np.abs(r) <= 1, 0.5 * r**2, np.abs(r) - 0.5)}[loss]
    exact = {"mean": e.mean(), "sum": e.sum(), "none": e}[reduction]
    if loss == "rmse":
        exact = np.sqrt(exact)
    fits = np.abs(exact) <= np.finfo(dtype).max
    right = np.isclose(got, exact, rtol=1e-3, atol=0)
    assert np.all(right | np.isposinf(got)), f"{got} for exact {exact}"
    assert np.all(fits | np.isposinf(got)), f"{got}: finite, yet the exact {exact} is beyond {dtype}"
    if np.ndim(got) == 0 and np.isinf(got):  # a scalar inf from finite inputs says so (docs/conventions.md)
        kinds = {w.category for w in caught}
        expected = RuntimeWarning if backend.name == "array_api_strict" else mseplug.LossOverflowWarning
        assert any(issubclass(kind, expected) for kind in kinds), f"inf without a warning: {kinds}"


@pytest.mark.parametrize("dtype", sorted(OVERFLOW))
def test_overflowed_rmse_gradient_is_never_a_finite_wrong_number(backend, dtype) -> None:
    """RMSE's gradient after an overflowed MSE is right (NumPy) or non-finite, never a wrong 0."""
    if backend.name == "array_api_strict" and dtype == "float16":
        pytest.skip("array_api_strict has no float16")
    big = OVERFLOW[dtype]
    y_true, y_pred = np.zeros(4), np.full(4, big)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        g = backend.to_numpy(mseplug.grad("rmse", backend.asarray(y_true, dtype),
                                          backend.asarray(y_pred, dtype)))
    assert np.all(np.isclose(g, 0.25, rtol=1e-3) | ~np.isfinite(g)), g

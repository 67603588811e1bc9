"""Inputs are never modified; concurrent calls equal serial ones; the registry survives a racy first use.

On every backend of the ``backend`` fixture: every loss, reduction, NaN policy
and multioutput mode, values and gradients, leave their inputs exactly as they
were (NumPy inputs are made read-only too, so an in-place write raises; torch
tensors keep their version counter, ``.grad`` and autograd graph). Eight
threads released together by a ``threading.Barrier`` get bit-for-bit the
serial results. And in a fresh interpreter per library, eight threads making
their first mseplug call at once all get the right answer from one backend.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from libraries import Lib, installed_backends
from loss_table import NAMES, example_params, in_every_domain, refusal

import mseplug

N_THREADS = 8


@pytest.fixture(params=[pytest.param(name, marks=pytest.mark.slow) if name == "jax" else name
                        for name in installed_backends()])
def backend(request: pytest.FixtureRequest) -> Lib:
    """The shared ``backend`` fixture, with JAX's cases marked ``slow``: JAX compiles a kernel
    for each combination of options, about 20 s a case."""
    return Lib(request.param)


def option_grid(n_outputs: int, full: bool = True) -> Iterator[dict[str, Any]]:
    """Every loss x reduction x nan_policy x multioutput mode, with and without sample weights.

    ``full=False`` (JAX, whose arrays are immutable anyway and which compiles a kernel per
    combination) gives each loss x reduction x nan_policy one of the six multioutput/weight
    variants, cycling, so every variant still appears several times.
    """
    variants = [(mode, weighted) for mode in ("uniform_average", "raw_values", "weights")
                for weighted in (False, True)]
    index = 0
    for loss in NAMES:
        for reduction in ("mean", "sum", "none"):
            if mseplug.get_loss(loss).loss.root and reduction != "mean":
                continue
            for nan_policy in ("propagate", "raise", "omit"):
                index += 1
                for k, (mode, weighted) in enumerate(variants):
                    if not full and k != index % len(variants):
                        continue
                    if reduction == "none" and mode == "weights":
                        mode = "raw_values"
                    multioutput = list(np.arange(1.0, n_outputs + 1)) if mode == "weights" else mode
                    options = dict(reduction=reduction, nan_policy=nan_policy, multioutput=multioutput)
                    options.update(example_params(loss))
                    yield {"loss": loss, "weighted": weighted, **options}


def scalar(options: dict[str, Any], n_outputs: int) -> bool:
    """Whether the loss is a scalar, so that ``grad`` applies."""
    return options["reduction"] != "none" and not (options["multioutput"] == "raw_values" and n_outputs > 1)


def inputs(rng: np.random.Generator, shape: tuple[int, ...], with_nan: bool) -> tuple[np.ndarray, ...]:
    y_true = rng.normal(size=shape)
    y_pred = y_true + rng.normal(size=shape)
    y_pred.reshape(-1)[1] = y_true.reshape(-1)[1]  # an exact tie: MAE's zero-residual convention
    y_true, y_pred = in_every_domain(y_true, y_pred)
    if with_nan:
        y_true.reshape(-1)[2] = np.nan
        y_pred.reshape(-1)[-1] = np.nan
    return y_true, y_pred, rng.uniform(0.5, 2.0, size=shape[0])


def snapshot(lib: Lib, x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return x.copy()
    return lib.to_numpy(x).copy()


def call_all(lib: Lib, y_true: Any, y_pred: Any, weight: Any, n_outputs: int, clean: bool) -> int:
    """Every option combination, value and (where it is a scalar) gradient; returns the call count."""
    calls = 0
    for spec in option_grid(n_outputs, full=lib.name != "jax"):
        spec = dict(spec)
        loss, weighted = spec.pop("loss"), spec.pop("weighted")
        if spec["nan_policy"] == "raise" and not clean:
            continue  # an error, tested in test_errors.py
        if refusal(loss, weighted=weighted, outputs=n_outputs,
                   multioutput=spec.get("multioutput", "uniform_average"),
                   reduction=spec.get("reduction", "mean")):
            continue  # a call the loss refuses by its record (max_error's weights), an error
        if weighted:
            spec["sample_weight"] = weight
        mseplug.get_loss(loss)(y_true, y_pred, **spec)
        calls += 1
        if scalar(spec, n_outputs):
            mseplug.grad(loss, y_true, y_pred, **spec)
            mseplug.value_and_grad(mseplug.get_loss(loss), y_true, y_pred, **spec)
            calls += 2
    return calls


def assert_unchanged(lib: Lib, before: dict[str, Any], after: dict[str, Any]) -> None:
    for name, original in before.items():
        now = snapshot(lib, after[name])
        assert now.shape == original.shape and now.dtype == original.dtype, name
        assert np.array_equal(now, original, equal_nan=True), f"{name} was modified"


@pytest.mark.parametrize("shape, dtype", [((7,), "float32"), ((5, 2), "float64"), ((4, 2, 3), "float32")],
                         ids=["1-d-float32", "2-d-float64", "3-d-float32"])
@pytest.mark.parametrize("clean", [True, False], ids=["finite", "with-NaN"])
def test_inputs_are_never_modified(backend, rng, shape, dtype, clean) -> None:
    n_outputs = int(np.prod(shape[1:]))
    y_true, y_pred, weight = inputs(rng, shape, with_nan=not clean)
    arrays = {"y_true": backend.asarray(y_true, dtype), "y_pred": backend.asarray(y_pred, dtype),
              "sample_weight": backend.asarray(weight, dtype)}
    if backend.name == "numpy":
        for array in arrays.values():
            array.flags.writeable = False  # an in-place write now raises
    before = {name: snapshot(backend, x) for name, x in arrays.items()}
    calls = call_all(backend, arrays["y_true"], arrays["y_pred"], arrays["sample_weight"], n_outputs, clean)
    assert calls >= (20 if backend.name == "jax" else 60 if clean else 40)
    assert_unchanged(backend, before, arrays)
    if backend.name == "numpy":
        assert not any(array.flags.writeable for array in arrays.values())


@pytest.mark.parametrize("clean", [True, False], ids=["finite", "with-NaN"])
def test_read_only_numpy_inputs_next_to_any_backend_are_not_modified(backend, rng, clean) -> None:
    """NumPy y_true and weights converted to y_pred's library (torch shares their memory)."""
    y_true, y_pred, weight = inputs(rng, (6, 2), with_nan=not clean)
    for array in (y_true, weight):
        array.flags.writeable = False
    pred = backend.asarray(y_pred, "float32")
    before = {"y_true": y_true.copy(), "y_pred": snapshot(backend, pred), "sample_weight": weight.copy()}
    calls = call_all(backend, y_true, pred, weight, 2, clean)
    assert calls >= (20 if backend.name == "jax" else 40)
    assert_unchanged(backend, before, {"y_true": y_true, "y_pred": pred, "sample_weight": weight})
    assert not y_true.flags.writeable and not weight.flags.writeable


@pytest.mark.parametrize("non_leaf", [False, True], ids=["leaf", "non-leaf"])
def test_torch_grad_and_graph_are_untouched(rng, non_leaf) -> None:
    """No ``.grad`` written, no version bump, and the caller's graph still backpropagates."""
    if "torch" not in installed_backends():
        pytest.skip("torch is not under test")
    import torch

    y_true_np, y_pred_np, weight_np = inputs(rng, (5, 2), with_nan=False)
    leaf = torch.tensor(y_pred_np, requires_grad=True)
    leaf.grad = torch.full_like(leaf, 7.0)  # a gradient from the caller's own backward pass
    y_pred = leaf * 1.0 if non_leaf else leaf
    graph = y_pred.grad_fn
    y_true = torch.tensor(y_true_np, requires_grad=True)  # a target in a graph too
    weight = torch.tensor(weight_np)
    versions = [t._version for t in (leaf, y_pred, y_true, weight)]
    calls = call_all(Lib("torch"), y_true, y_pred, weight, 2, clean=True)
    assert calls > 60
    assert [t._version for t in (leaf, y_pred, y_true, weight)] == versions
    assert torch.equal(leaf.grad, torch.full_like(leaf, 7.0)) and y_true.grad is None
    assert y_pred.requires_grad and y_pred.grad_fn is graph and leaf.is_leaf
    # The graph still works, and agrees with mseplug.grad.
    expected = mseplug.grad("huber", y_true, y_pred, sample_weight=weight, delta=0.7)
    mseplug.huber(y_true, y_pred, sample_weight=weight, delta=0.7).backward()
    torch.testing.assert_close(leaf.grad, expected + 7.0, rtol=1e-12, atol=0)
    assert y_true.grad is not None and torch.allclose(y_true.grad, -expected)


# -- concurrency ---------------------------------------------------------------------------
def thread_calls(n_outputs: int) -> list[tuple[str, Callable[..., Any], dict[str, Any]]]:
    """Values and gradients through the main code paths (fast paths, weights, NaN, output weights)."""
    weights = list(np.arange(1.0, n_outputs + 1))
    return [
        ("mse", mseplug.mse, {}),
        ("mae weighted", mseplug.mae, {"sample_weight": True}),
        ("rmse raw", mseplug.rmse, {"multioutput": "raw_values", "nan_policy": "omit"}),
        ("huber sum", mseplug.huber, {"reduction": "sum", "multioutput": weights, "delta": 0.5}),
        ("mse none omit", mseplug.mse, {"reduction": "none", "nan_policy": "omit", "sample_weight": True}),
        ("grad mae", lambda t, p, **o: mseplug.grad("mae", t, p, **o), {"nan_policy": "omit"}),
        ("grad rmse", lambda t, p, **o: mseplug.grad("rmse", t, p, **o), {"sample_weight": True}),
        ("value_and_grad huber",
         lambda t, p, **o: mseplug.value_and_grad("huber", t, p, **o), {"multioutput": weights}),
    ]


def run_calls(lib: Lib, data: tuple[Any, Any, Any], n_outputs: int) -> list[np.ndarray]:
    y_true, y_pred, weight = data
    out = []
    for _, function, options in thread_calls(n_outputs):
        options = dict(options)
        if options.get("sample_weight"):
            options["sample_weight"] = weight
        result = function(y_true, y_pred, **options)
        for part in result if isinstance(result, tuple) else (result,):
            out.append(lib.to_numpy(part).copy())
    return out


def run_threads(work: Callable[[int], Any]) -> list[Any]:
    """``work(i)`` in 8 threads released together; re-raises the first error."""
    barrier = threading.Barrier(N_THREADS)
    results: list[Any] = [None] * N_THREADS
    errors: list[BaseException] = []

    def target(i: int) -> None:
        try:
            barrier.wait(timeout=60)
            results[i] = work(i)
        except BaseException as error:  # reported in the main thread
            errors.append(error)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(N_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    if errors:
        raise errors[0]
    return results


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_concurrent_calls_equal_serial_calls(backend, rng, dtype) -> None:
    shape = (257, 3)
    datasets = []
    for _ in range(N_THREADS):  # each thread its own data: any cross-talk changes a result
        y_true, y_pred, weight = inputs(rng, shape, with_nan=True)
        datasets.append(tuple(backend.asarray(x, dtype) for x in (y_true, y_pred, weight)))
    shared = datasets[0]  # and every thread also computes on the same arrays
    serial = [run_calls(backend, data, 3) for data in datasets]
    serial_shared = run_calls(backend, shared, 3)

    def work(i: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        mine = [run_calls(backend, datasets[i], 3) for _ in range(2)]
        together = run_calls(backend, shared, 3)
        assert all(_same(a, b) for a, b in zip(mine[0], mine[1]))
        return mine[0], together

    for i, (mine, together) in enumerate(run_threads(work)):
        assert len(mine) == len(serial[i]) == len(_labels())
        for name, a, b in zip(_labels(), mine, serial[i]):
            assert _same(a, b), f"thread {i}, {name}: {a} != serial {b}"
        assert all(_same(a, b) for a, b in zip(together, serial_shared)), f"thread {i}, shared data"


def test_concurrent_large_numpy_calls_equal_serial_calls(rng) -> None:
    """Large inputs split over mseplug's worker pool; eight callers share it at once."""
    from mseplug.backend.numpy import walk as numpy_blocks

    n = numpy_blocks.PARALLEL_MIN + 12345
    y_true = rng.normal(size=n).astype(np.float32)
    preds = [y_true + rng.normal(size=n).astype(np.float32) for _ in range(N_THREADS)]
    serial = [(float(mseplug.mse(y_true, p)), float(mseplug.huber(y_true, p))) for p in preds]

    def work(i: int) -> tuple[float, float]:
        return float(mseplug.mse(y_true, preds[i])), float(mseplug.huber(y_true, preds[i]))

    assert run_threads(work) == serial
    assert len(set(serial)) == N_THREADS


def _labels() -> list[str]:
    """What each entry of :func:`run_calls`' result is (``value_and_grad`` gives two)."""
    labels = []
    for name, _, _ in thread_calls(3):
        labels.extend([f"{name}: value", f"{name}: grad"] if "value_and_grad" in name else [name])
    return labels


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)


# -- the registry under concurrent first use, in a fresh interpreter ---------------------------
FIRST_USE = {
    "numpy": """
        import numpy as lib
        class Sub(lib.ndarray): pass
        def make(x, i): return x.view(Sub) if i % 2 else x            # two first-time types
        def native(result): return type(result) is lib.ndarray
    """,
    "torch": """
        import torch as lib
        def make(x, i):
            t = lib.as_tensor(x)
            return lib.nn.Parameter(t) if i % 2 else t                   # two first-time types
        def native(result): return isinstance(result, lib.Tensor)
    """,
    "jax": """
        import jax as lib, jax.numpy as jnp
        lib.config.update("jax_enable_x64", True)
        def make(x, i): return jnp.asarray(x)
        def native(result): return isinstance(result, lib.Array)
    """,
}

RACE = """
    import json, sys, threading
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    import numpy as np
    import mseplug
    from mseplug.api import backends as _registry
    {setup}
    N, ROUNDS = 8, 6
    report = {{"wrong": [], "errors": [], "backends": set(), "instances": [], "rounds": 0}}
    for round in range(ROUNDS):
        if round:  # forget every detection and instance: the next round is a first use again
            _registry._by_type.clear()
            _registry._instances.clear()
        data = [(make(np.arange(5.0), i), make(np.arange(5.0) + i, i)) for i in range(N)]
        barrier, seen = threading.Barrier(N), [None] * N

        def work(i):
            try:
                barrier.wait(timeout=60)
                y_true, y_pred = data[i]
                value = mseplug.mse(y_true, y_pred)
                grad = mseplug.grad("mse", y_true, y_pred)
                backend = mseplug.get_backend(y_true, y_pred)
                ok = (native(value) and float(np.asarray(value.tolist())) == i * i
                      and np.allclose(np.asarray(grad.tolist()), 2 * i / 5))
                if not ok:
                    report["wrong"].append([round, i, repr(value)])
                seen[i] = (backend.name, id(backend))
            except Exception as error:
                report["errors"].append([round, i, repr(error)])

        threads = [threading.Thread(target=work, args=(i,)) for i in range(N)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        report["backends"].update(name for name, _ in filter(None, seen))
        report["instances"].append(len({{key for _, key in filter(None, seen)}}))
        report["rounds"] += 1
    report["backends"] = sorted(report["backends"])
    print(json.dumps(report))
"""


@pytest.mark.parametrize("library", [n for n in ("numpy", "torch", "jax") if n in installed_backends()])
def test_registry_is_safe_under_concurrent_first_use(library) -> None:
    code = textwrap.dedent(RACE).format(setup=textwrap.dedent(FIRST_USE[library]))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["errors"] == [] and report["wrong"] == [], report
    assert report["rounds"] == 6
    assert report["instances"] == [1] * 6  # one backend object per round, shared by all threads
    assert report["backends"] == [library]

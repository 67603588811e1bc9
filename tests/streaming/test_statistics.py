"""sufficient_statistics and loss_from_statistics on every backend, in one process.

Shards of unequal size (one of them empty, one with all weights 0) give
statistics whose sum turns into exactly the one-shot loss, for every loss
mseplug knows and every option; gradients flow through both functions.
The multi-process and multi-device versions are in test_torch_distributed.py,
test_jax_sharded.py and test_dask.py.
"""

from __future__ import annotations

from typing import Any

import distributed_cases as cases
import numpy as np
import pytest
from loss_table import skip_if_refused

import mseplug
from mseplug.engine import moments

ALL_LOSSES = (*mseplug.losses(), cases.CAUCHY)
SHARDS = (slice(0, 600), slice(600, 600), slice(600, 1000), slice(1000, 1337))


@pytest.fixture(scope="module", autouse=True)
def cauchy():
    cases.register_cauchy()
    yield
    cases.unregister_cauchy()


def summed_statistics(backend: Any, loss: str, case: dict[str, Any], weights: Any,
                      **params: Any) -> tuple[Any, ...]:
    """The shards' statistics added up: ``(S, W)``, or ``(named,)`` for a loss with statistics of
    its own (combined as its record says: re-centred sums, maxima)."""
    total: Any = None
    for part in SHARDS:
        w = None if weights is None else backend.asarray(weights[part])
        found = mseplug.sufficient_statistics(
            loss, backend.asarray(case["y_true"][part]), backend.asarray(case["y_pred"][part]),
            sample_weight=w, nan_policy=case["nan_policy"], **params)
        total = found if total is None else _added(loss, total, found)
    return total if isinstance(total, tuple) else (total,)


def _added(loss: str, a: Any, b: Any) -> Any:
    spec = mseplug.get_loss(loss).loss.statistics
    if spec is None:
        return a[0] + b[0], a[1] + b[1]
    import array_api_compat

    return moments.combined(array_api_compat.array_namespace(a["weight"]), spec, a, b)


@pytest.mark.parametrize("option", cases.OPTIONS)
@pytest.mark.parametrize("loss", ALL_LOSSES)
def test_statistics_of_shards_give_the_one_shot_loss(backend, loss, option) -> None:
    if loss in mseplug.losses() and not cases.applies(loss, option):
        pytest.skip(f"{loss} does not take the inputs of {option!r} (a property of its record)")
    outputs = cases.outputs(loss) if loss in mseplug.losses() else 3
    case = cases.data(option, loss=loss, outputs=outputs)
    params = cases.params(loss)
    weights = case["sample_weight"]
    if weights is not None:
        weights = weights.copy()
        weights[SHARDS[3]] = 0.0  # a shard whose weights are all 0 still takes part
    statistics = summed_statistics(backend, loss, case, weights, **params)
    S = statistics[0] if len(statistics) == 2 else statistics[0]["weight"]
    assert type(S) is type(backend.asarray(np.zeros(1))) and tuple(S.shape) == (outputs,)
    value = mseplug.loss_from_statistics(loss, *statistics, multioutput=case["multioutput"])
    expected = cases.one_shot(loss, {**case, "sample_weight": weights}, **params)
    assert cases.relative_error(backend.to_numpy(value), expected) < 1e-12


@pytest.mark.parametrize("loss", ALL_LOSSES)
def test_statistics_are_the_weighted_sums(loss) -> None:
    """S and W are, per output, Σ w·e(r) and Σ w over the elements kept (checked by hand)."""
    if loss in mseplug.losses():
        skip_if_refused(loss, elementwise=True)
    case = cases.data("omit", n=50, loss=loss)
    t, p, w = case["y_true"], case["y_pred"], case["sample_weight"]
    S, W = mseplug.sufficient_statistics(loss, t, p, sample_weight=w, nan_policy="omit")
    keep = ~(np.isnan(t) | np.isnan(p))
    for k in range(3):
        rows = keep[:, k]
        record = mseplug.get_loss(loss).loss  # the term of the mean (before a root)
        per_sample = record.pointwise(np, t[rows, k], p[rows, k], tuple(record.defaults.values()))
        np.testing.assert_allclose(S[k], np.sum(w[rows] * per_sample), rtol=1e-12)
        np.testing.assert_allclose(W[k], np.sum(w[rows]), rtol=1e-12)


def test_one_dimensional_and_empty_parts() -> None:
    S, W = mseplug.sufficient_statistics("mse", [1.0, 2.0], [2.0, 4.0])
    assert S.tolist() == [5.0] and W.tolist() == [2.0]
    S, W = mseplug.sufficient_statistics("mae", np.zeros((0, 4)), np.zeros((0, 4)),
                                         sample_weight=np.zeros(0))
    assert S.tolist() == [0.0] * 4 and W.tolist() == [0.0] * 4
    with np.errstate(invalid="ignore"):
        assert np.isnan(mseplug.loss_from_statistics("mae", S, W))  # no sample counted: NaN


def test_averaging_per_shard_losses_is_not_the_global_loss() -> None:
    """Why the statistics exist: the mean of per-shard RMSEs misses the global RMSE."""
    case = cases.data("plain")
    t, p = case["y_true"], case["y_pred"]
    shards = (slice(0, 1000), slice(1000, 1337))
    averaged = np.mean([float(mseplug.rmse(t[s], p[s])) for s in shards])
    S = sum(mseplug.sufficient_statistics("rmse", t[s], p[s])[0] for s in shards)
    W = sum(mseplug.sufficient_statistics("rmse", t[s], p[s])[1] for s in shards)
    exact = float(mseplug.loss_from_statistics("rmse", S, W))
    assert exact == pytest.approx(float(mseplug.rmse(t, p)), rel=1e-12)
    assert abs(averaged - exact) / exact > 0.05


@pytest.mark.parametrize("loss", ALL_LOSSES)
def test_torch_gradient_through_the_statistics(loss) -> None:
    torch = pytest.importorskip("torch")
    if loss in mseplug.losses():
        skip_if_refused(loss, weighted=True, outputs=3, multioutput="weights", streamed=True)
    case = cases.data("weighted", loss=loss)
    t = torch.asarray(case["y_true"])
    w = torch.asarray(case["sample_weight"])
    p = torch.asarray(case["y_pred"]).requires_grad_(True)
    total: Any = None
    for part in SHARDS:
        found = mseplug.sufficient_statistics(loss, t[part], p[part], sample_weight=w[part])
        total = found if total is None else _added(loss, total, found)
    parts = total if isinstance(total, tuple) else (total,)
    mseplug.loss_from_statistics(loss, *parts, multioutput=[0.2, 0.5, 0.3]).backward()
    expected = mseplug.grad(loss, case["y_true"], case["y_pred"], sample_weight=case["sample_weight"],
                            multioutput=[0.2, 0.5, 0.3])
    np.testing.assert_allclose(p.grad.numpy(), expected, rtol=1e-10, atol=1e-15)


def test_torch_compile_traces_the_statistics() -> None:
    torch = pytest.importorskip("torch")
    import mseplug.torch  # as a training script does (it detects tensors once)

    def global_loss(t: Any, p: Any, w: Any) -> Any:
        S, W = mseplug.sufficient_statistics("huber", t, p, sample_weight=w, delta=0.5)
        return mseplug.loss_from_statistics("huber", S, W)

    torch._dynamo.reset()
    compiled = torch.compile(global_loss, backend="aot_eager", fullgraph=True)
    case = cases.data("weighted", n=64)
    t, w = torch.asarray(case["y_true"]), torch.asarray(case["sample_weight"])
    p1 = torch.asarray(case["y_pred"]).requires_grad_(True)
    p2 = p1.detach().clone().requires_grad_(True)
    got, want = compiled(t, p1, w), mseplug.huber(t, p2, sample_weight=w, delta=0.5)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=0)
    got.backward()
    want.backward()
    torch.testing.assert_close(p1.grad, p2.grad, rtol=1e-12, atol=1e-18)


def test_jax_jit_vmap_and_grad_through_the_statistics() -> None:
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    case = cases.data("omit", n=120)
    t, p = jnp.asarray(case["y_true"]), jnp.asarray(case["y_pred"])
    w = jnp.asarray(case["sample_weight"])

    def per_shard(t: Any, p: Any, w: Any) -> Any:
        return mseplug.sufficient_statistics("rmse", t, p, sample_weight=w, nan_policy="omit")

    def global_loss(p: Any) -> Any:
        S, W = jax.vmap(per_shard)(t.reshape(4, 30, 3), p.reshape(4, 30, 3), w.reshape(4, 30))
        return mseplug.loss_from_statistics("rmse", S.sum(axis=0), W.sum(axis=0))

    value, gradient = jax.jit(jax.value_and_grad(global_loss))(p)
    want, want_grad = mseplug.value_and_grad("rmse", t, p, sample_weight=w, nan_policy="omit")
    assert cases.relative_error(value, want) < 1e-12
    np.testing.assert_allclose(np.asarray(gradient), np.asarray(want_grad), rtol=1e-10, atol=1e-16)
    assert np.all(np.isfinite(np.asarray(gradient)))


def test_statistics_errors() -> None:
    with pytest.raises(TypeError, match=r"multioutput.*loss_from_statistics"):
        mseplug.sufficient_statistics("mse", [1.0], [2.0], multioutput="raw_values")
    with pytest.raises(TypeError, match="unexpected keyword argument 'delta'"):
        mseplug.sufficient_statistics("mse", [1.0], [2.0], delta=2.0)
    with pytest.raises(ValueError, match="nan_policy='raise'"):
        mseplug.sufficient_statistics("mse", [np.nan], [2.0], nan_policy="raise")
    with pytest.raises(ValueError, match="negative"):
        mseplug.sufficient_statistics("mse", [1.0], [2.0], sample_weight=[-1.0])
    with pytest.raises(ValueError, match=r"S \(2,\) vs W \(3,\)"):
        mseplug.loss_from_statistics("mse", np.ones(2), np.ones(3))
    with pytest.raises(ValueError, match=r"S \(\) vs W \(\)"):
        mseplug.loss_from_statistics("mse", np.float64(1.0), np.float64(1.0))
    with pytest.raises(ValueError, match="3 weights"):
        mseplug.loss_from_statistics("mse", np.ones(2), np.ones(2), multioutput=[1, 2, 3])
    with pytest.raises(TypeError, match="complex"):
        mseplug.loss_from_statistics("mse", np.ones(2, complex), np.ones(2))


@pytest.mark.parametrize("loss", ["mse", "mae", "huber"])
def test_one_output_float32_statistics_are_accurate(loss) -> None:
    """The NumPy statistics of one output (the path of Dask chunks and the Accumulator)."""
    import math

    rng = np.random.default_rng(3)
    t = (rng.normal(size=2_000_000) * 100).astype(np.float32)
    p = (t + rng.normal(size=t.size)).astype(np.float32)
    w = rng.uniform(0, 2, size=t.size).astype(np.float32)
    r = p.astype(np.float64) - t.astype(np.float64)
    e = {"mse": r * r, "mae": np.abs(r), "huber": np.where(np.abs(r) <= 1, 0.5 * r * r, np.abs(r) - 0.5)}
    for weight in (None, w):
        S, W = mseplug.sufficient_statistics(loss, t, p, sample_weight=weight)
        wf = np.ones(t.size) if weight is None else weight.astype(np.float64)
        assert S[0] == pytest.approx(math.fsum((wf * e[loss]).tolist()), rel=1e-6)
        assert W[0] == pytest.approx(math.fsum(wf.tolist()), rel=1e-12 if weight is None else 1e-7)


def test_one_output_float32_overflow_is_redone_in_float64() -> None:
    t = np.zeros(100_000, np.float32)
    p = np.full(100_000, 1e20, np.float32)  # squares overflow float32, not float64
    S, W = mseplug.sufficient_statistics("mse", t, p, sample_weight=np.ones(100_000, np.float32))
    assert S[0] == pytest.approx(1e45, rel=1e-6) and W[0] == 100_000

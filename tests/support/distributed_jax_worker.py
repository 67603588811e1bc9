"""Run as a script by test_jax_sharded.py: JAX on 4 forced host devices, x64.

For every loss mseplug knows (and a registered one) and every option, the
global value and gradient from ``shard_map`` + ``psum`` of the statistics are
compared with one device's ``mseplug.value_and_grad``; the relative
differences go to stdout as JSON for the tests to judge.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

import distributed_cases as cases

import mseplug
from mseplug.loss.statistics import Maximum

N = 1336  # four equal shards


def sharded_value_and_grad(mesh: Any, loss: str, case: dict[str, Any], params: dict[str, float]
                           ) -> tuple[Any, Any]:
    weighted = case["sample_weight"] is not None
    multioutput = case["multioutput"]

    def local(t: Any, p: Any, w: Any) -> Any:
        statistics = mseplug.sufficient_statistics(
            loss, t, p, sample_weight=w if weighted else None, nan_policy=case["nan_policy"],
            **params)
        # (S, W) add up; statistics of their own (R², max_error) combine as their record says
        statistics = mseplug.combine_statistics(
            loss, statistics, add=lambda x: jax.lax.psum(x, "data"),
            # pmax has no derivative rule in JAX: the maximum of all_gather is differentiable
            maximum=lambda x: jnp.max(jax.lax.all_gather(x, "data"), axis=0))
        parts = statistics if isinstance(statistics, tuple) else (statistics,)
        return mseplug.loss_from_statistics(loss, *parts, multioutput=multioutput)

    def global_loss(p: Any, t: Any, w: Any) -> Any:
        # JAX cannot tell that a maximum over all_gather is the same on every device
        maxima = any(isinstance(part, Maximum) for part in
                     getattr(mseplug.get_loss(loss).loss.statistics, "parts", ()))
        value = jax.shard_map(local, mesh=mesh, in_specs=(P("data"), P("data"), P("data")),
                              out_specs=P(), check_vma=not maxima)(t, p, w)
        return jnp.sum(value), value

    spread = NamedSharding(mesh, P("data"))
    t = jax.device_put(jnp.asarray(case["y_true"]), spread)
    p = jax.device_put(jnp.asarray(case["y_pred"]), spread)
    w = jax.device_put(jnp.asarray(case["sample_weight"] if weighted else np.ones(N)), spread)
    (_, value), gradient = jax.jit(jax.value_and_grad(global_loss, has_aux=True))(p, t, w)
    return value, gradient


def one_device_value_and_grad(loss: str, case: dict[str, Any], params: dict[str, float]
                              ) -> tuple[Any, Any]:
    t, p = jnp.asarray(case["y_true"]), jnp.asarray(case["y_pred"])
    w = None if case["sample_weight"] is None else jnp.asarray(case["sample_weight"])

    def total(p: Any) -> Any:
        value = mseplug.get_loss(loss)(t, p, sample_weight=w, multioutput=case["multioutput"],
                                       nan_policy=case["nan_policy"], **params)
        return jnp.sum(value), value

    (_, value), gradient = jax.value_and_grad(total, has_aux=True)(p)
    return value, gradient


def gradient_error(got: Any, expected: Any) -> float:
    got, expected = np.asarray(got), np.asarray(expected)
    return float(np.max(np.abs(got - expected)) / np.max(np.abs(expected)))


def main() -> None:
    # Imported here, not at the top: pytest imports this module for its doctests, and the
    # device flag must be set before JAX starts, in this script's own process only.
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    global jax, jnp, NamedSharding, P
    import jax
    import jax.numpy as jnp
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    jax.config.update("jax_enable_x64", True)
    cases.register_cauchy()
    mesh = jax.make_mesh((4,), ("data",))
    found: dict[str, Any] = {"devices": len(jax.devices())}
    for loss in mseplug.losses():
        params = cases.params(loss)
        for option in cases.OPTIONS:
            if not cases.applies(loss, option):
                continue
            case = cases.data(option, n=N, loss=loss, outputs=cases.outputs(loss))
            value, gradient = sharded_value_and_grad(mesh, loss, case, params)
            want, want_gradient = one_device_value_and_grad(loss, case, params)
            found[f"{loss}/{option}"] = {
                "value": cases.relative_error(value, want),
                "gradient": gradient_error(gradient, want_gradient),
                "finite_gradient": bool(np.all(np.isfinite(np.asarray(gradient)))),
                "sharded_gradient": len(gradient.sharding.device_set),
            }
    # pmap: the same statistics, one shard per device.
    case = cases.data("weighted", n=N)

    def pmapped(t: Any, p: Any, w: Any) -> Any:
        S, W = jax.lax.psum(mseplug.sufficient_statistics("rmse", t, p, sample_weight=w), "d")
        return mseplug.loss_from_statistics("rmse", S, W)

    values = jax.pmap(pmapped, axis_name="d")(
        *(jnp.asarray(case[key]).reshape(4, N // 4, *np.shape(case[key])[1:])
          for key in ("y_true", "y_pred", "sample_weight")))
    found["pmap"] = cases.relative_error(np.asarray(values), cases.one_shot("rmse", case))
    # The naive way, for contrast: the mean of the four devices' RMSEs.
    shards = np.array_split(np.arange(N), 4)
    naive = np.mean([float(mseplug.rmse(case["y_true"][s], case["y_pred"][s])) for s in shards])
    found["naive_pmean_rmse"] = cases.relative_error(naive, mseplug.rmse(case["y_true"], case["y_pred"]))
    print(json.dumps(found))


if __name__ == "__main__":
    main()

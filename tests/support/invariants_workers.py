"""The processes of tests/test_invariants.py's ranks-and-devices properties.

``torch_ranks`` runs in each of two gloo ranks (started, joined and watched by
``distributed_torch_worker.launch``): every case's rows are split between the
ranks (a rank may hold none), each rank streams its rows into an
``Accumulator`` in a few updates, and ``mseplug.torch.all_reduce`` gives the
global value. Run as a script (``python invariants_workers.py jax CASES``), it
is JAX on 4 forced host devices (as tests/distributed_jax_worker.py):
``sufficient_statistics`` under ``shard_map``, ``jax.lax.psum``, then
``loss_from_statistics``. Both read their cases from one JSON file written by
the parent (one spawn for all of them) and write what they found as JSON; the
parent judges.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np


def _array(values: Any, dtype: str = "float64") -> np.ndarray:
    return np.asarray(values, dtype=np.float64).astype(dtype)


def torch_ranks(rank: int, world: int, folder: str) -> list[dict[str, Any]]:
    """One gloo rank's work (launched by ``distributed_torch_worker.launch``, which joins the
    group and writes the result): every case of ``folder/cases.json``."""
    import torch

    import mseplug
    import mseplug.torch

    found: list[dict[str, Any]] = []
    for case in json.loads(Path(folder, "cases.json").read_text()):
        y_true, y_pred = _array(case["y_true"]), _array(case["y_pred"])
        weight = None if case["sample_weight"] is None else _array(case["sample_weight"])
        acc = mseplug.Accumulator(case["loss"], multioutput=case["multioutput"],
                                  nan_policy=case["nan_policy"], **case["params"])
        dtype = getattr(torch, case["dtype"])
        for rows in case["updates"][rank]:
            acc.update(torch.asarray(y_true[rows]).to(dtype), torch.asarray(y_pred[rows]).to(dtype),
                       sample_weight=None if weight is None else torch.asarray(weight[rows]))
        try:
            reduced = mseplug.torch.all_reduce(acc)
            found.append({"value": np.asarray(reduced.compute(), np.float64).tolist(),
                          "count": reduced.count})
        except Exception as error:  # judged by the parent, with the case that raised it
            found.append({"error": f"{type(error).__name__}: {error}"})
    return found


def jax_devices(cases_file: str) -> list[dict[str, Any]]:
    """Every case on 4 devices: shard_map + psum of the statistics, then loss_from_statistics."""
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    import mseplug

    mesh = jax.make_mesh((4,), ("data",))
    spread = NamedSharding(mesh, P("data"))
    found: list[dict[str, Any]] = [{"devices": len(jax.devices())}]
    for case in json.loads(Path(cases_file).read_text()):
        loss, params, weighted = case["loss"], case["params"], case["sample_weight"] is not None
        multioutput = case["multioutput"]
        if not isinstance(multioutput, str):
            multioutput = np.asarray(multioutput, dtype=np.float64)

        def local(t: Any, p: Any, w: Any, loss: str = loss, params: Any = params,
                  weighted: bool = weighted, multioutput: Any = multioutput,
                  nan_policy: str = case["nan_policy"]) -> Any:
            S, W = mseplug.sufficient_statistics(loss, t, p, sample_weight=w if weighted else None,
                                                 nan_policy=nan_policy, **params)
            S, W = jax.lax.psum((S, W), "data")
            try:
                return mseplug.loss_from_statistics(loss, S, W, multioutput=multioutput, **params)
            except TypeError:  # no params taken: test_loss_from_statistics_takes_the_params says so
                return mseplug.loss_from_statistics(loss, S, W, multioutput=multioutput)

        try:
            n = len(case["y_true"])
            t = jax.device_put(jnp.asarray(_array(case["y_true"], case["dtype"])), spread)
            p = jax.device_put(jnp.asarray(_array(case["y_pred"], case["dtype"])), spread)
            w = jax.device_put(jnp.asarray(_array(case["sample_weight"]) if weighted else np.ones(n)),
                               spread)
            value = jax.jit(jax.shard_map(local, mesh=mesh, in_specs=(P("data"),) * 3,
                                          out_specs=P()))(t, p, w)
            found.append({"value": np.asarray(value, np.float64).tolist()})
        except Exception as error:
            found.append({"error": f"{type(error).__name__}: {error}"})
    return found


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "jax":
    print(json.dumps(jax_devices(sys.argv[2])))

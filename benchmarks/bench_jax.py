"""JAX backend speed: mseplug against the hand-written ``jnp`` expression, in one process.

Two comparisons, each the median of repeats, A and B alternated so drift hits both
(``mseplug.cli.timing.compare``, the helper ``mseplug bench`` uses too):

* under ``jax.jit``: ``jax.jit(lambda a, b: mseplug.mse(a, b))`` against
  ``jax.jit(lambda a, b: jnp.mean((a - b) ** 2))`` (and MAE), with
  ``.block_until_ready()``; the goal is the one ``mseplug bench`` applies (at least 0.97
  of the hand-written expression's speed: a time ratio of at most 1/0.97);
* un-jitted: the eager call ``mseplug.mse(a, b)`` (one cached jitted kernel plus
  mseplug's Python checks) against the jitted hand-written function, i.e. the
  overhead a user pays for not wrapping the loss in ``jit``.

Run: ``python benchmarks/bench_jax.py [--repeats 21] [--dtype float32]``.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import mseplug
from mseplug.cli.bench_cases import GOAL
from mseplug.cli.timing import compare

HANDWRITTEN: dict[str, Callable[[Any, Any], Any]] = {
    "mse": lambda a, b: jnp.mean((a - b) ** 2),
    "mae": lambda a, b: jnp.mean(jnp.abs(a - b)),
}
OURS: dict[str, Callable[..., Any]] = {"mse": mseplug.mse, "mae": mseplug.mae}


def compare_on(
    ours: Callable[..., Any], hand: Callable[..., Any], a: Any, b: Any, repeats: int
) -> tuple[float, float]:
    """The shared ``compare`` of ``ours(a, b)`` and ``hand(a, b)``, each waited for."""
    return compare(lambda: ours(a, b).block_until_ready(),
                   lambda: hand(a, b).block_until_ready(), repeat=repeats)


def _fmt(seconds: float) -> str:
    return f"{seconds * 1e6:10.1f} us" if seconds < 1e-3 else f"{seconds * 1e3:10.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = parser.parse_args()
    if args.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    rng = np.random.default_rng(0)
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {args.dtype}, "
          f"median of {args.repeats} interleaved repeats")
    header = f"{'case':<34}{'size':>10}{'mseplug':>14}{'hand-written':>16}{'ratio':>8}"
    print(header)
    print("-" * len(header))
    rows = []
    for size in (1_000, 1_000_000):
        a = jnp.asarray(rng.normal(size=size), dtype=args.dtype)
        b = jnp.asarray(rng.normal(size=size), dtype=args.dtype)
        for name in ("mse", "mae"):
            ours = jax.jit(lambda x, y, f=OURS[name]: f(x, y))
            hand = jax.jit(HANDWRITTEN[name])
            np.testing.assert_allclose(ours(a, b), hand(a, b), rtol=1e-5)
            t_ours, t_hand = compare_on(ours, hand, a, b, args.repeats)
            rows.append((f"jit {name}", size, t_ours, t_hand))
    for size in (8, 1_000):
        a = jnp.asarray(rng.normal(size=size), dtype=args.dtype)
        b = jnp.asarray(rng.normal(size=size), dtype=args.dtype)
        for name in ("mse", "mae"):
            hand = jax.jit(HANDWRITTEN[name])
            t_ours, t_hand = compare_on(OURS[name], hand, a, b, args.repeats)
            rows.append((f"eager {name} vs jitted hand-written", size, t_ours, t_hand))
    for case, size, t_ours, t_hand in rows:
        print(f"{case:<34}{size:>10}{_fmt(t_ours):>14}{_fmt(t_hand):>16}{t_ours / t_hand:>8.3f}")
    worst = max(t_ours / t_hand for case, _, t_ours, t_hand in rows if case.startswith("jit"))
    extra = statistics.median(t_ours - t_hand for case, _, t_ours, t_hand in rows
                              if case.startswith("eager"))
    print(f"\nworst ratio under jit: {worst:.3f} (goal: <= {1 / GOAL['jax-jit'].value:.3f})")
    print(f"eager call overhead over the jitted hand-written function: {extra * 1e6:.1f} us "
          "(median)")


if __name__ == "__main__":
    main()

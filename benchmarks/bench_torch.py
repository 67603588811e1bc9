"""mseplug's torch backend against torch's own losses, side by side in one process.

Run: ``python benchmarks/bench_torch.py [--repeats N] [--large N]``

Each row times mseplug and its torch counterpart on the same tensors,
alternating the two for ``repeats`` rounds and reporting the median time per
call of each (so drift of the machine hits both alike; ``mseplug.cli.timing.compare``,
shared with ``mseplug bench``). The targets are the goals ``mseplug bench`` applies
(``mseplug.cli.bench_cases.GOALS``): forward on small tensors at most 1.1x the time of
``F.mse_loss``/``F.l1_loss``; MSE forward+backward on 10^7 float32 at least 1.3x faster.

On the default options mseplug runs the very ATen kernel ``F.mse_loss`` runs
(``torch._C._nn.mse_loss``; its own shape check makes the wrapper's
``broadcast_tensors`` and size warning redundant), so the large-tensor ratio
measures a microsecond of Python on a ~70 ms step: a ratio a percent or two
above 1 is timing noise, and is marked as such.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F

import mseplug
from mseplug.cli.bench_cases import GOAL
from mseplug.cli.timing import compare
from mseplug.torch import HuberLoss, MAELoss, MSELoss, RMSELoss

#: Run-to-run spread of the median on this kind of measurement; larger gaps are real.
NOISE = 0.02


class Row(NamedTuple):
    case: str
    ours: float  # seconds per call, median
    theirs: float
    target: float | None  # largest acceptable ratio, None: informational

    @property
    def ratio(self) -> float:
        return self.ours / self.theirs


def _pair(n: int, requires_grad: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(n)
    y_true = torch.randn(n, generator=generator)
    y_pred = torch.randn(n, generator=generator).requires_grad_(requires_grad)
    return y_true, y_pred


def _small(n: int, repeats: int) -> list[Row]:
    """Forward calls on ``n`` float32 elements: functions and modules."""
    t, p = _pair(n)
    weights = torch.rand(n)
    mse, mae, huber, rmse = MSELoss(), MAELoss(), HuberLoss(), RMSELoss()
    torch_mse, torch_mae, torch_huber = torch.nn.MSELoss(), torch.nn.L1Loss(), torch.nn.HuberLoss()
    small = 1 / GOAL["torch-forward-small"].value  # largest acceptable time ratio
    cases = [
        ("mse forward", lambda: mseplug.mse(t, p), lambda: F.mse_loss(p, t), small),
        ("mae forward", lambda: mseplug.mae(t, p), lambda: F.l1_loss(p, t), small),
        ("huber forward", lambda: mseplug.huber(t, p), lambda: F.huber_loss(p, t), None),
        ("rmse forward (vs sqrt(F.mse_loss))", lambda: mseplug.rmse(t, p),
         lambda: torch.sqrt(F.mse_loss(p, t)), None),
        ("MSELoss() vs nn.MSELoss()", lambda: mse(p, t), lambda: torch_mse(p, t), small),
        ("MAELoss() vs nn.L1Loss()", lambda: mae(p, t), lambda: torch_mae(p, t), small),
        ("HuberLoss() vs nn.HuberLoss()", lambda: huber(p, t), lambda: torch_huber(p, t), None),
        ("RMSELoss() vs sqrt(nn.MSELoss())", lambda: rmse(p, t),
         lambda: torch.sqrt(torch_mse(p, t)), None),
        ("mse weighted (vs hand-written)", lambda: mseplug.mse(t, p, sample_weight=weights),
         lambda: torch.sum(weights * (p - t) ** 2) / torch.sum(weights), None),
    ]
    return [Row(f"{name}, n={n}", *compare(ours, theirs, repeat=repeats), target)
            for name, ours, theirs, target in cases]


def run(repeats: int = 21, large: int = 10**7) -> list[Row]:
    """Every case of the table, in order."""
    rows = _small(8, repeats) + _small(1000, repeats)
    t, p = _pair(large, requires_grad=True)

    def step(loss: Callable[[], torch.Tensor]) -> Callable[[], None]:
        def run_step() -> None:
            p.grad = None
            loss().backward()

        return run_step

    big = max(4, repeats // 2)
    rows.append(Row(f"mse forward+backward, n={large:.0e} float32",
                    *compare(step(lambda: mseplug.mse(t, p)), step(lambda: F.mse_loss(p, t)), repeat=big),
                    1 / GOAL["torch-step"].value))
    rows.append(Row(f"mae forward+backward, n={large:.0e} float32",
                    *compare(step(lambda: mseplug.mae(t, p)), step(lambda: F.l1_loss(p, t)), repeat=big),
                    None))
    return rows


def _format(seconds: float) -> str:
    return f"{seconds * 1e6:10.2f} us" if seconds < 1e-2 else f"{seconds * 1e3:10.2f} ms"


def table(rows: list[Row]) -> str:
    width = max(len(row.case) for row in rows)
    lines = [f"{'case':<{width}}  {'mseplug':>13}  {'torch':>13}  {'ratio':>6}  target",
             "-" * (width + 50)]
    for row in rows:
        if row.target is None:
            verdict = ""
        elif row.ratio <= row.target:
            verdict = f"<= {row.target:.2f} ok"
        elif row.ratio <= row.target + NOISE:
            verdict = f"<= {row.target:.2f} ok within timing noise ({NOISE:.0%})"
        else:
            verdict = f"<= {row.target:.2f} MISSED"
        lines.append(f"{row.case:<{width}}  {_format(row.ours)}  {_format(row.theirs)}  "
                     f"{row.ratio:6.3f}  {verdict}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=21, help="timings per case (median)")
    parser.add_argument("--large", type=int, default=10**7, help="size of the large case")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, mseplug "
          f"{mseplug.__version__}; median of {args.repeats} alternating repeats\n")
    print(table(run(args.repeats, args.large)))


if __name__ == "__main__":
    main()

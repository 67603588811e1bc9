"""The streaming, mergeable ``Accumulator`` (torchmetrics' update/compute split).

It keeps the same sufficient statistics the one-shot functions compute —
per output ``Σwᵢ·eᵢ`` and ``Σwᵢ``, plus a count — in float64 NumPy, and
finalises them with the same code, so a stream of chunks equals one call.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mseplug import _reduce
from mseplug._backend_registry import dispatch
from mseplug._loss_registry import options_for
from mseplug._options import Options
from mseplug._typing import ArrayLike, LossLike


class Accumulator:
    """Streaming loss over chunks of ``(y_true, y_pred)``; mergeable and picklable.

    Parameters
    ----------
    loss : str, loss function or Loss
        A registered loss (see :func:`mseplug.losses`).
    multioutput, nan_policy
        As for the loss functions (``reduction`` is always ``"mean"``).
    **params
        The loss's parameters, e.g. ``delta=2.0`` for ``"huber"``.

    Examples
    --------
    >>> import numpy as np, mseplug
    >>> acc = mseplug.Accumulator("mse")
    >>> acc.update(np.array([120_000.0]), np.array([100_000.0]))
    >>> acc.update(np.array([60_000.0]), np.array([80_000.0]))
    >>> float(acc.compute())
    400000000.0
    >>> other = mseplug.Accumulator("mse")
    >>> other.update(np.array([0.0]), np.array([0.0]))
    >>> float(acc.merge(other).compute()) == 8e8 / 3
    True
    """

    def __init__(
        self,
        loss: LossLike = "mse",
        *,
        multioutput: Any = "uniform_average",
        nan_policy: str = "propagate",
        **params: Any,
    ) -> None:
        self.options: Options = options_for(
            loss, multioutput=multioutput, nan_policy=nan_policy, **params
        )
        self.reset()

    def reset(self) -> None:
        """Forget every update."""
        self.total: np.ndarray | None = None  # Σ w·e per output, float64
        self.weight: np.ndarray | None = None  # Σ w per output, float64
        self.count = 0  # samples seen
        self.output_shape: tuple[int, ...] | None = None
        self.output_weights: np.ndarray | None = None

    def __repr__(self) -> str:
        return f"Accumulator({self.options.loss.name!r}, samples={self.count})"

    def update(self, y_true: ArrayLike, y_pred: ArrayLike, *,
               sample_weight: ArrayLike | None = None) -> None:
        """Add one chunk of samples (any library; checked as by the loss functions)."""
        backend, y_true, y_pred, sample_weight = dispatch(y_true, y_pred, sample_weight)
        (total, weight), checked = backend.statistics(self.options, y_true, y_pred, sample_weight)
        output_weights = checked.output_weights
        if output_weights is not None:
            output_weights = _to_float64(backend, output_weights)
        self._add(
            _to_float64(backend, total), _to_float64(backend, weight),
            checked.shape[0], checked.shape[1:], output_weights,
        )

    def _add(self, total: Any, weight: Any, count: int, shape: Any, output_weights: Any) -> None:
        if self.total is None:
            self.total, self.weight, self.output_shape = total.copy(), weight.copy(), shape
            self.output_weights = output_weights
        elif shape != self.output_shape:
            raise ValueError(
                f"y_pred outputs {shape} differ from the {self.output_shape} seen before; "
                "every chunk needs the same trailing shape"
            )
        else:
            assert self.weight is not None
            self.total = self.total + total
            self.weight = self.weight + weight
        self.count += count

    def merge(self, other: Accumulator) -> Accumulator:
        """Add ``other``'s statistics (same loss and options) into this one; returns ``self``."""
        if not isinstance(other, Accumulator):
            raise TypeError(f"other must be an Accumulator; got {type(other).__name__}")
        if (other.options.loss, other.options.params, other.options.nan_policy) != (
            self.options.loss, self.options.params, self.options.nan_policy
        ):
            raise ValueError(f"cannot merge {other!r} into {self!r}: options differ")
        if other.total is not None:
            self._add(other.total, other.weight, other.count, other.output_shape,
                      other.output_weights)
        return self

    def compute(self) -> np.ndarray:
        """The loss over everything seen: a float64 0-d array (or per output, ``raw_values``)."""
        if self.total is None or self.output_shape is None:
            raise ValueError("Accumulator.compute() before any update: no samples seen")
        value = _reduce.finalize(
            np, self.options, self.total, self.weight, self.output_shape, self.output_weights,
            _sqrt,
        )
        return np.asarray(value, dtype=np.float64)


def _sqrt(xp: Any, x: Any) -> Any:
    return xp.sqrt(x)


def _to_float64(backend: Any, array: Any) -> np.ndarray:
    if isinstance(array, np.ndarray):
        return array.astype(np.float64)
    return np.asarray(backend.to_numpy(array), dtype=np.float64).reshape(-1)

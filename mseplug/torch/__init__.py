"""``torch.nn`` losses: ``Loss(name)`` for any registered loss, and a named class for each.

Every registered loss has a class named from its record's title:
:class:`MSELoss`, :class:`MAELoss`, :class:`RMSELoss`, :class:`HuberLoss`,
``PinballLoss``, ``LogCoshLoss``, ``MSLELoss``, ``PoissonDevianceLoss``, and
any loss you register (``mseplug.torch.CauchyLoss`` once ``"cauchy"`` is).
They replace ``torch.nn.MSELoss``, ``L1Loss`` and ``HuberLoss`` in a training
loop: ``__init__(reduction="mean", *params)`` (the loss's parameters may be
given in order after ``reduction``, as ``torch.nn.HuberLoss(reduction,
delta)``) and ``forward(input, target)`` in torch's order (``input`` is the
prediction, ``target`` the truth), plus mseplug's keywords: ``sample_weight``
in :meth:`Loss.forward`, ``multioutput`` and ``nan_policy`` in the
constructor. Unlike torch, shapes that differ raise a ``ValueError`` instead
of being broadcast with a warning, mixed float dtypes promote, and integer
targets are accepted. A score (``R2ScoreLoss``, ``ExplainedVarianceLoss``) is
minimised as ``1 - score``. :func:`all_reduce` sums an :class:`~mseplug.Accumulator`
across ``torch.distributed`` ranks.

Examples
--------
>>> import torch
>>> from mseplug.torch import MSELoss
>>> loss_fn = MSELoss()
>>> loss_fn
MSELoss(reduction='mean', multioutput='uniform_average', nan_policy='propagate')
>>> prediction = torch.tensor([100_000.0, 80_000.0], requires_grad=True)
>>> loss = loss_fn(prediction, torch.tensor([120_000.0, 60_000.0]))
>>> loss.item()
400000000.0
>>> loss.backward()
>>> prediction.grad.tolist()
[-20000.0, 20000.0]
>>> from mseplug.torch import HuberLoss
>>> HuberLoss("sum", 2.0)  # torch.nn.HuberLoss's order: reduction, delta
HuberLoss(reduction='sum', delta=2.0, multioutput='uniform_average', nan_policy='propagate')
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import torch

from mseplug.api.backends import backend_named
from mseplug.api.registry import get_loss, losses
from mseplug.engine.pipeline import evaluate
from mseplug.loss.options import make_options
from mseplug.loss.record import Loss as LossRecord
from mseplug.torch.distributed import all_reduce

_OPTIONS = ("reduction", "multioutput", "nan_policy")
_SUFFIX = "Loss"


def _setting(name: str) -> property:
    """An option attribute; assigning it (torch allows it for ``reduction``) re-checks options."""

    def getter(self: Loss) -> Any:
        return self._settings[name]

    def setter(self: Loss, value: Any) -> None:
        self._configure({**self._settings, name: value})

    return property(getter, setter, doc=f"The loss's ``{name}`` option (checked when set).")


class Loss(torch.nn.Module):
    """Any registered mseplug loss as a ``torch.nn.Module``.

    Parameters
    ----------
    loss : str
        A registered loss (see :func:`mseplug.losses`).
    reduction : {"mean", "sum", "none"}, default "mean"
        Weighted mean over samples, the sum of the weighted elementwise losses,
        or the weighted elementwise losses themselves (``input``'s shape).
    multioutput : {"uniform_average", "raw_values"} or array_like, default "uniform_average"
        How trailing dimensions (outputs) combine; see :func:`mseplug.mse`.
    nan_policy : {"propagate", "raise", "omit"}, default "propagate"
        ``"omit"`` drops elements whose target or prediction is NaN (zero gradient there).
    **params
        The loss's parameters (``delta=`` for ``"huber"``, ``alpha=`` for ``"pinball"``).

    Examples
    --------
    >>> import torch
    >>> from mseplug.torch import Loss
    >>> loss_fn = Loss("huber", delta=0.5)
    >>> loss_fn
    Loss('huber', reduction='mean', delta=0.5, multioutput='uniform_average', nan_policy='propagate')
    >>> float(loss_fn(torch.tensor([0.0, 2.0]), torch.tensor([0.0, 0.0])))
    0.4375
    """

    reduction = _setting("reduction")
    multioutput = _setting("multioutput")
    nan_policy = _setting("nan_policy")
    #: The loss of a named class (``"mse"`` for :class:`MSELoss`); empty for :class:`Loss`.
    _name: ClassVar[str] = ""

    def __init__(
        self, loss: str, reduction: str = "mean", *, multioutput: Any = "uniform_average",
        nan_policy: str = "propagate", **params: Any,
    ) -> None:
        super().__init__()
        self._record: LossRecord = get_loss(loss).loss
        self._configure({"reduction": reduction, "multioutput": multioutput,
                         "nan_policy": nan_policy, **params})

    def _configure(self, settings: dict[str, Any]) -> None:
        options = {key: settings[key] for key in _OPTIONS}
        params = {key: value for key, value in settings.items() if key not in _OPTIONS}
        self._options = make_options(self._record, params=params, **options)
        self._settings = settings

    @property
    def params(self) -> dict[str, Any]:
        """The loss's parameter values."""
        return self._options.param_dict

    def forward(self, input: torch.Tensor, target: Any, sample_weight: Any = None) -> torch.Tensor:
        """The loss of predictions ``input`` against ``target`` (torch's argument order).

        Parameters
        ----------
        input : Tensor of shape (n_samples, *outputs)
            Predictions; the result has their device and (promoted) dtype.
        target : Tensor or array_like of the same shape
            Ground truth; a NumPy array is moved to ``input``'s device.
        sample_weight : Tensor or array_like of shape (n_samples,), optional
            Finite, non-negative weights with a positive sum.

        Returns
        -------
        Tensor
            0-d (or per output / per element, by ``multioutput`` and ``reduction``). For a
            score (greater is better: R², explained variance) it is ``1 - score``, the
            quantity to minimise (0 at a perfect fit; ``1 - R²`` is ``SS_res / SS_tot``).
        """
        value = evaluate(_TORCH, self._options, target, input, sample_weight)
        return 1 - value if self._record.greater_is_better else value

    def extra_repr(self) -> str:
        shown = [] if type(self)._name else [repr(self._record.name)]
        shown.append(f"reduction={self._settings['reduction']!r}")
        shown += [f"{name}={value!r}" for name, value in self.params.items()]
        for name in ("multioutput", "nan_policy"):
            value = self._settings[name]
            shown.append(f"{name}={value.tolist() if hasattr(value, 'tolist') else value!r}")
        return ", ".join(shown)


def _named(record: LossRecord) -> type[Loss]:
    """The named class of a registered loss: torch's ``(reduction, *params)`` constructor."""
    names = tuple(record.params)

    def __init__(self: Loss, reduction: str = "mean", *params: float,
                 multioutput: Any = "uniform_average", nan_policy: str = "propagate",
                 **keywords: float) -> None:
        if len(params) > len(names):
            raise TypeError(f"{type(self).__name__}() takes reduction and at most {len(names)} "
                            f"parameter(s) {list(names)} by position; got {1 + len(params)}")
        given = dict(zip(names, params))
        for name in given.keys() & keywords.keys():
            raise TypeError(f"{type(self).__name__}() got multiple values for {name!r}")
        Loss.__init__(self, record.name, reduction, multioutput=multioutput,
                      nan_policy=nan_policy, **given, **keywords)

    keyword, positional = inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD
    __init__.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("self", positional),
         inspect.Parameter("reduction", positional, default="mean")]
        + [inspect.Parameter(name, positional, default=spec.default)
           for name, spec in record.params.items()]
        + [inspect.Parameter("multioutput", keyword, default="uniform_average"),
           inspect.Parameter("nan_policy", keyword, default="propagate")])
    anchor = record.anchors.get("torch")
    drop_in = f"; a drop-in for ``{anchor}``" if anchor else ""
    summary = (record.doc.strip().splitlines() or [record.name])[0]
    doc = (f"{summary.rstrip('.')}: :func:`mseplug.{record.name}` as a ``torch.nn.Module``"
           f"{drop_in}.\n\nParameters are those of :class:`Loss` without ``loss``; the loss's "
           "own parameters may follow ``reduction`` by position, in order.")
    attributes: dict[str, Any] = {"__init__": __init__, "_name": record.name, "__doc__": doc,
                                  "__module__": __name__}
    attributes.update({name: _setting(name) for name in names})
    return type(f"{record.title}{_SUFFIX}", (Loss,), attributes)


_classes: dict[str, type[Loss]] = {}


def loss_class(name: str) -> type[Loss]:
    """The named ``nn.Module`` class of the registered loss ``name`` (made once)."""
    record = get_loss(name).loss
    made = _classes.get(name)
    if made is None or made._name != record.name:
        made = _classes[name] = _named(record)
    return made


def _titles() -> dict[str, str]:
    return {f"{get_loss(name).loss.title}{_SUFFIX}": name for name in losses()}


def __getattr__(name: str) -> type[Loss]:
    """``MSELoss``, ``HuberLoss``, ...: the named class of every registered loss, on first use."""
    loss = _titles().get(name) if name.endswith(_SUFFIX) else None
    if loss is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return loss_class(loss)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_titles()))


_TORCH = backend_named("torch")
# The built-ins' classes exist from the start (as real module attributes, for tools that read them).
globals().update({cls.__name__: cls for cls in map(loss_class, losses())})
__all__ = ["Loss", "all_reduce", "loss_class", *sorted(_titles())]

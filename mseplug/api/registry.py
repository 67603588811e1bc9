"""The registry of losses: each registered :class:`~mseplug.Loss` and its public function.

Built-in losses register when ``mseplug`` is imported; installed plugins
(entry-point group ``mseplug.losses``, each entry a ``Loss``) are read once,
on first use of a name the process does not know yet or of :func:`losses`;
a broken plugin warns and is skipped. Every list of loss names in mseplug is
derived from here.
"""

from __future__ import annotations

import copyreg
import inspect
import textwrap
import warnings
from typing import Any, Protocol

from mseplug._typing import Array, ArrayLike, BackendLike, Multioutput, NanPolicy, Reduction
from mseplug.api.backends import dispatch
from mseplug.api.fork_safe import ForkSafeLock
from mseplug.engine.pipeline import evaluate
from mseplug.loss import builtin
from mseplug.loss.options import Options, make_options
from mseplug.loss.record import Loss

ENTRY_POINT_GROUP = "mseplug.losses"

_lock = ForkSafeLock()  # a forked child gets a fresh one
_records: dict[str, Loss] = {}
_functions: dict[str, LossFunction] = {}
_entry_points_read = False
_builtins: set[str] = set()  # names registered by mseplug itself: never replaced


class LossFunction(Protocol):
    """A registered loss as a function: ``mseplug.mse`` and every ``register_loss`` result.

    The loss's own parameters (``delta=`` for Huber) come as further keywords.
    """

    loss: Loss

    def __call__(
        self, y_true: ArrayLike, y_pred: ArrayLike, *, sample_weight: ArrayLike | None = None,
        multioutput: Multioutput = "uniform_average", reduction: Reduction = "mean",
        nan_policy: NanPolicy = "propagate", backend: BackendLike = None, **params: float,
    ) -> Array: ...


#: The keyword defaults of every loss function (the default objects themselves: a call that
#: leaves them alone takes the cached default options without comparing strings).
_UNIFORM: Multioutput = "uniform_average"
_MEAN: Reduction = "mean"
_PROPAGATE: NanPolicy = "propagate"


def loss_function(loss: Loss) -> LossFunction:
    """The public function of ``loss`` (not registered): checks options, then runs the engine."""
    defaults = make_options(loss)

    def function(
        y_true: ArrayLike, y_pred: ArrayLike, *, sample_weight: ArrayLike | None = None,
        multioutput: Multioutput = _UNIFORM, reduction: Reduction = _MEAN,
        nan_policy: NanPolicy = _PROPAGATE, backend: BackendLike = None, **params: float,
    ) -> Array:
        if (multioutput is _UNIFORM and reduction is _MEAN and nan_policy is _PROPAGATE
                and not params):
            options = defaults
        else:
            options = make_options(loss, multioutput=multioutput, reduction=reduction,
                                   nan_policy=nan_policy, params=params)
        chosen, y_true, y_pred, sample_weight = dispatch(y_true, y_pred, sample_weight, backend)
        return evaluate(chosen, options, y_true, y_pred, sample_weight)

    function.__name__ = function.__qualname__ = loss.name
    function.__module__ = "mseplug"
    function.__doc__ = docstring(loss)
    function.__signature__ = _signature(loss)  # type: ignore[attr-defined]
    function.loss = loss  # type: ignore[attr-defined]
    result: LossFunction = function  # type: ignore[assignment]
    return result


def _signature(loss: Loss) -> inspect.Signature:
    keyword = inspect.Parameter.KEYWORD_ONLY
    positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
    parameters = [
        inspect.Parameter("y_true", positional, annotation="ArrayLike"),
        inspect.Parameter("y_pred", positional, annotation="ArrayLike"),
        inspect.Parameter("sample_weight", keyword, default=None, annotation="ArrayLike | None"),
        inspect.Parameter("multioutput", keyword, default=_UNIFORM, annotation="Multioutput"),
        inspect.Parameter("reduction", keyword, default=_MEAN, annotation="Reduction"),
        inspect.Parameter("nan_policy", keyword, default=_PROPAGATE, annotation="NanPolicy"),
        inspect.Parameter("backend", keyword, default=None, annotation="BackendLike"),
    ]
    parameters += [inspect.Parameter(name, keyword, default=spec.default, annotation="float")
                   for name, spec in loss.params.items()]
    return inspect.Signature(parameters, return_annotation="Array")


_COMMON_PARAMETERS = """y_true : array_like of shape (n_samples,) or (n_samples, *outputs)
    Ground truth. Converted to ``y_pred``'s library and device.
y_pred : array_like of the same shape
    Predictions; the result follows their library and device. The one
    shape difference tolerated is ``(n,)`` against ``(n, 1)``; nothing is
    ever broadcast.
sample_weight : array_like of shape (n_samples,), optional
    Finite, non-negative weights with a positive sum.
multioutput : {"uniform_average", "raw_values"} or array_like, default "uniform_average"
    How outputs (trailing dimensions) combine: their plain mean, one value
    per output (shape ``y.shape[1:]``), or an average with these weights.
    With ``reduction="sum"`` the outputs' sums are added (weighted).
reduction : {"mean", "sum", "none"}, default "mean"
    Weighted mean over samples, sum of the weighted elementwise losses, or
    the weighted elementwise losses themselves (``y_pred``'s shape).
nan_policy : {"propagate", "raise", "omit"}, default "propagate"
    ``"omit"`` drops each element whose target or prediction is NaN and
    renormalises by the weight that remains (its ``"none"`` entry is 0).
backend : str or Backend, optional
    Force a backend (see :func:`mseplug.backends`); inputs are converted.
"""

_RETURNS = """Returns
-------
loss : array
    A 0-d array of ``y_pred``'s library and promoted dtype (an array for
    ``"raw_values"`` or ``reduction="none"``), still part of any autodiff graph.
"""


def docstring(loss: Loss) -> str:
    """The numpydoc docstring of ``loss``'s function: the record's ``doc`` (summary, paragraphs,
    ``Examples``) with the sections every loss function shares written in, before ``Examples``."""
    doc = textwrap.dedent(loss.doc).strip() if loss.doc else (
        f"The {loss.name} loss, averaged over samples like :func:`mseplug.mse`.")
    lines = doc.splitlines()
    if lines and lines[0] and not lines[0].startswith(" "):
        first, rest = lines[0], textwrap.dedent("\n".join(lines[1:]))  # a summary on the quote line
        doc = f"{first}\n{rest}".strip()
    body, examples = doc, ""
    marker = "\nExamples\n--------\n"
    if marker in doc:
        body, examples = doc.split(marker, 1)
        examples = "Examples\n--------\n" + examples
    own = "".join(
        f"{name} : float, default {spec.default:g}\n    {spec.doc or 'The parameter'}; "
        f"{spec.describe()}.\n" for name, spec in loss.params.items()
    )
    bounds = ", ".join(f"``{name} {bound.describe()}``" for name, bound in
                       (loss.domain.items() if isinstance(loss.domain, dict) else ()))
    notes = f"\n\nDefined for {bounds}; other values are a ``ValueError``." if bounds else ""
    sections = (f"{body.rstrip()}{notes}\n\nParameters\n----------\n{_COMMON_PARAMETERS}{own}\n"
                f"{_RETURNS}")
    return sections + (f"\n{examples.rstrip()}\n" if examples else "")


def register_loss(loss: Loss, *, replace: bool = False) -> LossFunction:
    """Register ``loss`` in this process; return its function.

    The function takes the keywords of :func:`mseplug.mse` plus the loss's
    parameters, and the loss works at once everywhere a built-in does:
    :func:`mseplug.grad`, :class:`mseplug.Accumulator`, ``mseplug.torch.Loss``,
    ``mseplug.sklearn.make_scorer``, ``mseplug score --metric``.

    Parameters
    ----------
    loss : Loss
        The loss record.
    replace : bool, default False
        Replace a registered loss of the same name (otherwise a ``ValueError``). A built-in
        loss is never replaced (a ``ValueError``: register under another name), so
        ``mseplug.mse`` and ``get_loss("mse")`` always agree.

    Returns
    -------
    callable
        ``f(y_true, y_pred, *, sample_weight=None, multioutput=..., reduction=...,
        nan_policy=..., backend=None, **params)``.

    Examples
    --------
    >>> import mseplug
    >>> def quartic(xp, r):
    ...     return (r * r) ** 2
    >>> def quartic_derivative(xp, r):
    ...     return 4 * r ** 3
    >>> mean_quartic = mseplug.register_loss(
    ...     mseplug.Loss("mean_quartic_example", quartic, quartic_derivative), replace=True)
    >>> float(mean_quartic([0.0, 0.0], [1.0, 2.0]))
    8.5
    >>> mseplug.grad("mean_quartic_example", [0.0, 0.0], [1.0, 2.0]).tolist()
    [2.0, 16.0]
    """
    if not isinstance(loss, Loss):
        raise TypeError(f"register_loss needs a mseplug.Loss; got {type(loss).__name__}")
    with _lock:
        _read_entry_points()
        return _register(loss, replace=replace)


def _register(loss: Loss, *, replace: bool) -> LossFunction:
    existing = _records.get(loss.name)
    if existing is not None and existing is not loss:
        if loss.name in _builtins:  # mseplug.<name> and every import of it would disagree
            raise ValueError(
                f"{loss.name!r} is a built-in loss and cannot be replaced; register yours under "
                f"another name, e.g. Loss('my_{loss.name}', ...)"
            )
        if not replace:
            raise ValueError(
                f"a loss named {loss.name!r} is registered already; pass replace=True to "
                "replace it"
            )
    function = loss_function(loss)
    _records[loss.name] = loss
    _functions[loss.name] = function
    return function


def register_builtins() -> dict[str, LossFunction]:
    """Register mseplug's own losses (:data:`mseplug.loss.builtin.BUILTINS`), once; their
    functions by name."""
    with _lock:
        for loss in builtin.BUILTINS:
            if loss.name not in _builtins:
                _register(loss, replace=False)
                _builtins.add(loss.name)
        return {loss.name: _functions[loss.name] for loss in builtin.BUILTINS}


def builtins() -> tuple[str, ...]:
    """The names of mseplug's own losses, in registration order."""
    return tuple(name for name in _records if name in _builtins)


def _read_entry_points() -> None:
    global _entry_points_read
    if _entry_points_read:
        return
    with _lock:
        if _entry_points_read:
            return
        _entry_points_read = True
        from importlib.metadata import entry_points

        for point in entry_points(group=ENTRY_POINT_GROUP):
            try:
                loss = point.load()
                if not isinstance(loss, Loss):
                    raise TypeError(f"{point.value} is a {type(loss).__name__}, not a mseplug.Loss")
                if loss.name in _records:
                    raise ValueError(f"a loss named {loss.name!r} is registered already")
                _register(loss, replace=False)
            except Exception as error:  # a broken plugin must not break mseplug
                warnings.warn(
                    f"mseplug loss plugin {point.name!r} failed to load and is skipped: {error!r}",
                    RuntimeWarning, stacklevel=4,
                )


def losses() -> tuple[str, ...]:
    """Names of every registered loss: the built-ins, then plugins, in registration order.

    Examples
    --------
    >>> import mseplug
    >>> mseplug.losses()[:6]
    ('mse', 'mae', 'rmse', 'huber', 'pinball', 'log_cosh')
    """
    _read_entry_points()
    return tuple(_records)


def _lookup(name: str) -> str:
    if name not in _records:
        _read_entry_points()
        if name not in _records:
            raise ValueError(f"loss {name!r} is unknown; registered losses: {losses()}")
    return name


def get_loss(name: str) -> LossFunction:
    """The function of the registered loss ``name``.

    Examples
    --------
    >>> import mseplug
    >>> mseplug.get_loss("pinball") is mseplug.pinball
    True
    """
    if not isinstance(name, str):
        raise TypeError(f"loss name must be a string; got {type(name).__name__}")
    return _functions[_lookup(name)]


def get_record(name: str) -> Loss:
    """The :class:`Loss` record registered as ``name``."""
    return _records[_lookup(name)]


def is_registered(loss: Loss) -> bool:
    return _records.get(loss.name) is loss


def as_loss(loss: Any, argument: str = "loss") -> Loss:
    """A loss given by name, as its function, or as a record, as the record."""
    if isinstance(loss, str):
        return get_record(loss)
    if isinstance(loss, Loss):
        return loss
    record = getattr(loss, "loss", None)
    if callable(loss) and isinstance(record, Loss):
        return record
    raise TypeError(
        f"{argument} must be a loss name (one of {losses()}), a mseplug loss function or a "
        f"mseplug.Loss; got {loss!r}"
    )


def options_for(loss: Any, *, argument: str = "loss", **options: Any) -> Options:
    """Checked :class:`Options` for a loss given in any form, with options and parameters mixed."""
    record = as_loss(loss, argument)
    keywords = {key: options.pop(key) for key in ("multioutput", "reduction", "nan_policy")
                if key in options}
    return make_options(record, params=options, **keywords)


def _reduce_loss(loss: Loss) -> Any:
    # A registered loss pickles by name, so a module or scorer saved in one process loads
    # in another where it is registered (built-ins and entry points always are); an
    # unregistered one pickles by value.
    if is_registered(loss):
        return (get_record, (loss.name,))
    return (_rebuilt, (loss.fields(),))


def _rebuilt(fields: dict[str, Any]) -> Loss:
    return Loss(**fields)


copyreg.pickle(Loss, _reduce_loss)

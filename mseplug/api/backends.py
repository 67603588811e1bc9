"""Which backend handles an array: lazy detection, caching, plugins.

Detection looks each array *type* up once and caches the answer. A built-in
backend is only asked when its library is already in ``sys.modules`` (if the
user never imported torch, no input can be a tensor), so nothing here imports
a framework. Order: NumPy, torch, JAX; then plugins (registered in-process with
:func:`register_backend`, or installed under the ``mseplug.backends``
entry-point group, read once); then the generic Array API backend. Plain
lists, scalars and objects with ``__array__`` are handled by NumPy.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import warnings
from typing import Any

from mseplug._typing import ArrayLike, BackendLike
from mseplug.api.fork_safe import ForkSafeLock
from mseplug.engine.backend import Backend

__all__ = [
    "backend_by_name",
    "backend_named",
    "backend_of",
    "backends",
    "dispatch",
    "get_backend",
    "register_backend",
    "resolve",
]

# name -> (module that defines it, class name, library whose import makes it relevant)
_BUILTINS: dict[str, tuple[str, str, str]] = {
    "numpy": ("mseplug.backend.numpy.backend", "NumpyBackend", "numpy"),
    "torch": ("mseplug.backend.torch.backend", "TorchBackend", "torch"),
    "jax": ("mseplug.backend.jax.backend", "JaxBackend", "jax"),
}
_GENERIC = ("mseplug.backend.array_api.backend", "ArrayAPIBackend")
ENTRY_POINT_GROUP = "mseplug.backends"

_lock = ForkSafeLock()  # a forked child gets a fresh one
_instances: dict[str, Backend] = {}
_by_type: dict[type, Backend | None] = {}
_registered: list[Backend] = []
_entry_points_read = False


def backend_named(name: str) -> Backend:
    """The built-in backend ``name`` (``"numpy"``, ``"torch"``, ``"jax"``, ``"array_api"``)."""
    backend = _instances.get(name)
    if backend is None:
        with _lock:
            module_name, class_name, _ = _BUILTINS[name] if name in _BUILTINS else (*_GENERIC, "")
            cls = getattr(importlib.import_module(module_name), class_name)
            backend = _instances.setdefault(name, cls())
    return backend


def _plugins() -> list[Backend]:
    """Registered backends, then installed entry-point plugins (read once; failures warn)."""
    global _entry_points_read
    if not _entry_points_read:
        with _lock:
            if not _entry_points_read:
                for cls in _load_entry_points():
                    _add(cls)
                _entry_points_read = True
    return _registered


def _load_entry_points() -> list[type[Backend]]:
    from importlib.metadata import entry_points

    loaded = []
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = point.load()
            if not (isinstance(cls, type) and issubclass(cls, Backend)):
                raise TypeError(f"{point.value} is not a mseplug.Backend subclass")
            if cls.library and not _installed(cls.library):
                continue  # its arrays cannot exist here: disabled, quietly
            loaded.append(cls)
        except Exception as error:  # a broken plugin must not break mseplug
            warnings.warn(
                f"mseplug backend plugin {point.name!r} failed to load and is skipped: {error!r}",
                RuntimeWarning,
                stacklevel=3,
            )
    return loaded


def _add(cls: type[Backend]) -> Backend:
    backend = cls()
    _registered[:] = [b for b in _registered if b.name != backend.name] + [backend]
    _by_type.clear()  # types decided before may now belong to the new backend
    return backend


def _detect(x: Any) -> Backend | None:
    for name, (_, _, library) in _BUILTINS.items():
        if library in sys.modules:
            backend = backend_named(name)
            if backend.owns(x):
                return backend
    for backend in _plugins():
        if _owns(backend, x):
            return backend
    generic = backend_named("array_api")
    return generic if generic.owns(x) else None


def _owns(backend: Backend, x: Any) -> bool:
    """Whether a plugin owns ``x``; a plugin whose detection fails warns once and is dropped."""
    try:
        return backend.owns(x)
    except Exception as error:  # a broken plugin must not break mseplug
        warnings.warn(
            f"mseplug backend plugin {backend.name!r} failed to recognise an array and is "
            f"disabled: {error!r}",
            RuntimeWarning,
            stacklevel=4,
        )
        _registered[:] = [b for b in _registered if b is not backend]
        return False


def warm_loaded() -> None:
    """Detect the array types of frameworks already imported, so a first call made while
    ``torch.compile`` traces finds them cached (tracing cannot take the registry's lock)."""
    for name, (_, _, library) in _BUILTINS.items():
        if library in sys.modules:
            backend = backend_named(name)
            with _lock:
                for kind in backend.array_types():
                    _by_type.setdefault(kind, backend)


def backend_of(x: Any) -> Backend | None:
    """The backend owning ``x``'s type, or ``None`` for lists, scalars and other non-arrays."""
    kind = type(x)
    try:
        return _by_type[kind]
    except KeyError:
        pass
    with _lock:
        backend = _by_type[kind] = _detect(x)
    return backend


def backend_by_name(name: Any) -> Backend:
    """The backend ``backend=`` names: a Backend, a Backend class (registered), or a name."""
    if isinstance(name, Backend):
        return name
    if isinstance(name, type) and issubclass(name, Backend):
        return register_backend(name)
    if not isinstance(name, str):
        raise TypeError(f"backend must be a backend name or a Backend; got {type(name).__name__}")
    if name in _BUILTINS or name == "array_api":
        if name in _BUILTINS and not _installed(_BUILTINS[name][2]):
            raise ValueError(f"backend={name!r} is not installed; installed: {backends()}")
        return backend_named(name)
    for backend in _plugins():
        if backend.name == name:
            return backend
    raise ValueError(f"backend={name!r} is unknown; installed backends: {backends()}")


def resolve(y_true: Any, y_pred: Any, backend: Any = None) -> Backend:
    """The backend of one call: the one named, else ``y_pred``'s, else ``y_true``'s, else NumPy."""
    if backend is not None:
        return backend_by_name(backend)
    found = backend_of(y_pred)
    if found is None:
        found = backend_of(y_true)
    return found if found is not None else backend_named("numpy")


def dispatch(
    y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None,
    backend: BackendLike = None,
) -> tuple[Backend, ArrayLike, ArrayLike, ArrayLike | None]:
    """The backend of one call, and its inputs with other backends' arrays turned into NumPy.

    The chosen backend converts NumPy arrays, lists and scalars itself; an
    array of another backend (a JAX array with a torch prediction, say) is
    handed over as NumPy by the backend that owns it.
    """
    pred_owner = backend_of(y_pred)
    true_owner = pred_owner if type(y_true) is type(y_pred) else backend_of(y_true)
    if backend is not None:
        chosen = backend_by_name(backend)
    else:
        chosen = pred_owner or true_owner or backend_named("numpy")
    if true_owner is not None and true_owner is not chosen:
        y_true = _handed_over(true_owner, chosen, y_true, "y_true")
    if pred_owner is not None and pred_owner is not chosen:
        y_pred = _handed_over(pred_owner, chosen, y_pred, "y_pred")
    if sample_weight is not None:
        owner = backend_of(sample_weight)
        if owner is not None and owner is not chosen:
            sample_weight = _handed_over(owner, chosen, sample_weight, "sample_weight")
    return chosen, y_true, y_pred, sample_weight


def _handed_over(owner: Backend, chosen: Backend, x: Any, name: str) -> Any:
    try:
        return owner.to_numpy(x)
    except Exception as error:
        raise TypeError(
            f"{name} is a {type(x).__name__} that cannot be converted to {chosen.name} "
            f"arrays ({error}); convert it yourself first"
        ) from None


def get_backend(*arrays: Any) -> Backend:
    """The backend that handles these arrays, given in the losses' order ``(y_true, y_pred, ...)``.

    The answer follows ``y_pred`` (the second array) when it is an array of a
    known library, else the first array that is; lists and scalars go to NumPy.

    Examples
    --------
    >>> import numpy as np, mseplug
    >>> mseplug.get_backend(np.zeros(3), np.ones(3)).name
    'numpy'
    """
    ordered = arrays[1:2] + arrays[:1] + arrays[2:]
    for array in ordered:
        found = backend_of(array)
        if found is not None:
            return found
    return backend_named("numpy")


def backends() -> tuple[str, ...]:
    """Names of the backends usable now: built-ins whose library is installed, then plugins.

    Examples
    --------
    >>> import mseplug
    >>> "numpy" in mseplug.backends()
    True
    """
    names = [name for name, (_, _, lib) in _BUILTINS.items() if _installed(lib)]
    names.append("array_api")
    names.extend(backend.name for backend in _plugins() if backend.name not in names)
    return tuple(names)


def _installed(library: str) -> bool:
    return library in sys.modules or importlib.util.find_spec(library) is not None


def register_backend(backend_cls: type[Backend]) -> Backend:
    """Register a :class:`Backend` subclass in this process; returns its instance.

    A registered backend is asked after NumPy, torch and JAX and before the
    generic Array API backend. Registering a name again replaces the old one.
    A backend whose :attr:`~mseplug.Backend.library` is not installed is a
    ``ValueError`` here (an installed entry-point plugin of that kind is
    disabled quietly).
    """
    if not (isinstance(backend_cls, type) and issubclass(backend_cls, Backend)):
        raise TypeError(
            f"backend_cls must be a subclass of mseplug.Backend; got {backend_cls!r}"
        )
    if backend_cls.library and not _installed(backend_cls.library):
        raise ValueError(
            f"backend {backend_cls.name!r} needs the library {backend_cls.library!r}, which is "
            "not installed; install it first (or leave Backend.library empty)"
        )
    with _lock:
        _plugins()
        return _add(backend_cls)

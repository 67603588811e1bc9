"""Every backend's namespace has what ``mseplug._typing.Namespace`` says the engine calls.

The protocol is the engine's whole vocabulary of array functions: mypy holds
the code to it, and this test holds each installed library's namespace (as
its backend hands it to the engine) to the protocol, so a missing function is
found here rather than mid-computation.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from libraries import Lib, installed_backends

from mseplug._typing import Namespace
from mseplug.api.backends import backend_of


def protocol_members() -> set[str]:
    functions = {name for name, value in vars(Namespace).items()
                 if inspect.isfunction(value) and (not name.startswith("_") or name.startswith("__array"))}
    return functions | set(Namespace.__annotations__)


def test_the_protocol_lists_what_the_engine_calls() -> None:
    members = protocol_members()
    assert {"where", "sum", "astype", "sqrt", "float64", "isdtype", "finfo"} <= members
    assert "mean" not in members  # the engine divides sums itself (weights, exponents)


@pytest.mark.parametrize("name", installed_backends())
def test_each_backend_namespace_has_every_member(name: str) -> None:
    array = Lib(name).asarray(np.array([1.0, 2.0]))
    backend = backend_of(array)
    assert backend is not None, f"no backend owns a {name} array"
    xp = backend.namespace(array)
    missing = sorted(member for member in protocol_members() if not hasattr(xp, member))
    assert missing == [], f"{name}'s namespace {xp.__name__} lacks {missing}"
    assert xp.finfo(xp.float32).bits == 32
    assert bool(xp.isdtype(xp.float64, "real floating"))

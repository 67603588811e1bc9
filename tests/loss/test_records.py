"""Loss records and their parameters: what registration accepts, and how values are checked.

Parameters are checked like torch's ``HuberLoss`` and optax do: a real number,
not ``bool``, a string or complex; finite and within bounds. Under ``jax.jit``
a traced parameter is accepted (as ``optax.huber_loss`` accepts a traced
``delta``) and only its value checks are skipped, as for weights.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from libraries import installed_backends

import mseplug
from mseplug.engine import pipeline
from mseplug.loss import make_options


def _square(xp: Any, r: Any) -> Any:
    return r * r


def _square_derivative(xp: Any, r: Any) -> Any:
    return 2 * r


# -- registration ----------------------------------------------------------------------------
def test_builtins_are_six_records_and_functions() -> None:
    assert mseplug.losses()[:6] == ("mse", "mae", "rmse", "huber", "pinball", "log_cosh")
    for name in mseplug.losses()[:6]:
        function = mseplug.get_loss(name)
        assert function is getattr(mseplug, name) and function.loss.name == name
        assert function.__doc__ and "Examples" in function.__doc__
    assert mseplug.get_loss("huber").loss.defaults == {"delta": 1.0}
    assert mseplug.get_loss("pinball").loss.defaults == {"alpha": 0.5}


def test_registering_a_name_again_needs_replace() -> None:
    first = mseplug.register_loss(mseplug.Loss("twice_test", _square, _square_derivative),
                                  replace=True)
    with pytest.raises(ValueError, match=r"'twice_test' is registered already.*replace=True"):
        mseplug.register_loss(mseplug.Loss("twice_test", _square, _square_derivative))
    assert mseplug.get_loss("twice_test") is first
    with pytest.raises(ValueError, match="'mse' is a built-in loss and cannot be replaced"):
        mseplug.register_loss(mseplug.Loss("mse", _square, _square_derivative))
    assert float(mseplug.mse([0.0], [2.0])) == 4.0


@pytest.mark.parametrize(("build", "error", "words"), [
    (lambda: mseplug.Loss("bad_test", 3), TypeError, ("bad_test", "elementwise", "callable")),
    (lambda: mseplug.Loss("bad_test", _square, "slope"), TypeError,
     ("bad_test", "derivative", "callable")),
    (lambda: mseplug.Loss("bad test", _square), ValueError, ("identifier", "'bad test'")),
    (lambda: mseplug.Loss("bad_test", _square, params={"k": "1"}), TypeError,
     ("bad_test", "'k'", "real default", "'1'")),
    (lambda: mseplug.Loss("bad_test", _square, params={"k": True}), TypeError,
     ("bad_test", "'k'", "real default", "True")),
    (lambda: mseplug.Loss("bad_test", _square, params={"k": 1j}), TypeError,
     ("bad_test", "'k'", "real default")),
    (lambda: mseplug.Loss("bad_test", _square, params={"k": math.inf}), ValueError,
     ("bad_test", "'k'", "finite")),
    (lambda: mseplug.Loss("bad_test", _square, params={"k": mseplug.Param(2.0, high=1.0)}),
     ValueError, ("bad_test", "'k'", "< 1", "2.0")),
    (lambda: mseplug.Loss("bad_test", _square, params={"reduction": 1.0}), ValueError,
     ("bad_test", "'reduction'", "identifier other than")),
    (lambda: mseplug.Loss("bad_test", _square, params=[("k", 1.0)]), TypeError,
     ("bad_test", "params", "mapping")),
    (lambda: mseplug.register_loss(_square), TypeError, ("register_loss", "Loss", "function")),
])
def test_bad_loss_records_are_typed_errors(build, error, words) -> None:
    with pytest.raises(error) as info:
        build()
    for word in words:
        assert word in str(info.value)


def test_unknown_names_and_keywords_name_the_loss_and_the_argument() -> None:
    with pytest.raises(ValueError, match=r"loss 'smape' is unknown; registered losses: .*'mse'"):
        mseplug.get_loss("smape")
    with pytest.raises(TypeError, match="loss name must be a string"):
        mseplug.get_loss(3)
    with pytest.raises(TypeError, match=r"mse\(\) got an unexpected keyword argument 'alpha'; "
                                        "it takes no parameters"):
        mseplug.mse([1.0], [2.0], alpha=0.5)
    with pytest.raises(TypeError, match=r"huber\(\) .* 'alpha'; its parameters are delta"):
        mseplug.huber([1.0], [2.0], alpha=0.5)
    with pytest.raises(TypeError, match=r"mae\(\) .* 'delta'"):
        mseplug.Accumulator("mae", delta=2.0)
    with pytest.raises(TypeError, match=r"mse\(\) .* 'delta'"):
        mseplug.grad("mse", [1.0], [2.0], delta=2.0)
    with pytest.raises(ValueError, match="loss 'smape' is unknown"):
        mseplug.Accumulator("smape")


def test_unknown_keywords_in_the_integrations() -> None:
    if "torch" in installed_backends():
        import mseplug.torch

        with pytest.raises(TypeError, match=r"mse\(\) .* 'delta'"):
            mseplug.torch.Loss("mse", delta=1.0)
        with pytest.raises(TypeError, match="unexpected keyword"):
            mseplug.torch.MSELoss(delta=1.0)
    pytest.importorskip("sklearn")
    import mseplug.sklearn as msk

    with pytest.raises(TypeError, match=r"unexpected option.*'alpha'.*'mse'"):
        msk.make_scorer("mse", alpha=0.5)


def test_options_check_once_and_run_on_a_backend() -> None:
    options = make_options(mseplug.get_loss("pinball").loss, reduction="sum",
                           params={"alpha": 0.9})
    assert options.param_dict == {"alpha": 0.9}
    backend = mseplug.get_backend(np.zeros(1))
    assert float(pipeline.evaluate(backend, options, [12.0, 12.0], [10.0, 14.0])) == \
        pytest.approx(2.0)


# -- parameter values ----------------------------------------------------------------------------
NOT_REAL = [True, np.True_, "1", 1 + 0j, None, [1.0]]


@pytest.mark.parametrize("value", NOT_REAL, ids=repr)
@pytest.mark.parametrize(("loss", "name"), [("huber", "delta"), ("pinball", "alpha")])
def test_a_parameter_is_a_real_number(loss, name, value) -> None:
    with pytest.raises(TypeError, match=f"{loss}'s {name} must be a real number"):
        mseplug.get_loss(loss)([0.0], [1.0], **{name: value})
    with pytest.raises(TypeError, match=f"{loss}'s {name}"):
        mseplug.Accumulator(loss, **{name: value})


def test_torch_rejects_what_mseplug_rejects() -> None:
    torch = pytest.importorskip("torch")
    import mseplug.torch

    for value in ("1", 1 + 0j):
        with pytest.raises(TypeError, match="delta must be a float"):  # torch's own HuberLoss
            torch.nn.HuberLoss(delta=value)(torch.zeros(2), torch.ones(2))
        with pytest.raises(TypeError, match="huber's delta must be a real number"):
            mseplug.torch.HuberLoss(delta=value)
    # torch takes True as the int 1; mseplug is stricter: a bool is no threshold.
    assert float(torch.nn.HuberLoss(delta=True)(torch.zeros(2), torch.ones(2))) == 0.5
    with pytest.raises(TypeError, match="huber's delta must be a real number; got bool"):
        mseplug.torch.HuberLoss(delta=True)


@pytest.mark.parametrize(("loss", "name", "value", "words"), [
    ("huber", "delta", 0.0, "finite and > 0"), ("huber", "delta", -1.0, "finite and > 0"),
    ("huber", "delta", math.nan, "got nan"), ("huber", "delta", math.inf, "got inf"),
    ("pinball", "alpha", 0.0, "in (0, 1)"), ("pinball", "alpha", 1.0, "in (0, 1)"),
    ("pinball", "alpha", 1.5, "got 1.5"),
])
def test_a_parameter_is_finite_and_in_bounds(loss, name, value, words) -> None:
    with pytest.raises(ValueError) as info:
        mseplug.get_loss(loss)([0.0], [1.0], **{name: value})
    assert f"{loss}'s {name} must be" in str(info.value) and words in str(info.value)


def test_numbers_of_every_library_are_accepted() -> None:
    expected = float(mseplug.huber([0.0, 0.0], [0.3, 3.0], delta=0.5))
    values: list[Any] = [np.float32(0.5), np.float64(0.5), np.array(0.5), 0.5]
    if "torch" in installed_backends():
        import torch

        values.append(torch.tensor(0.5))
    if "jax" in installed_backends():
        import jax.numpy as jnp

        values.append(jnp.asarray(0.5))
    for value in values:
        assert float(mseplug.huber([0.0, 0.0], [0.3, 3.0], delta=value)) == expected
    assert float(mseplug.huber([0.0], [3.0], delta=2)) == 4.0  # an int


def test_a_traced_parameter_under_jit_is_accepted_as_optax_does() -> None:
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    jnp = jax.numpy
    y = jnp.zeros(4)
    p = jnp.asarray([0.1, -0.8, 2.0, -5.0])

    def ours(delta: Any) -> Any:
        return mseplug.huber(y, p, delta=delta)

    def theirs(delta: Any) -> Any:
        return optax.huber_loss(p, y, delta=delta).mean()

    for delta in (0.5, 1.5):
        assert float(jax.jit(ours)(delta)) == pytest.approx(float(theirs(delta)), rel=1e-12)
        assert float(jax.grad(ours)(delta)) == pytest.approx(float(jax.grad(theirs)(delta)),
                                                             rel=1e-12)
    # value checks are skipped under tracing (as for weights): alpha=1.5 is not refused there
    traced = jax.jit(lambda a: mseplug.pinball(y, p, alpha=a))(1.5)
    assert np.isfinite(float(traced))
    with pytest.raises(ValueError, match="alpha"):
        mseplug.pinball(y, p, alpha=1.5)  # concrete: checked
    with pytest.raises(TypeError, match="real scalar"):
        jax.jit(lambda d: mseplug.huber(y, p, delta=d))(jnp.ones(2))

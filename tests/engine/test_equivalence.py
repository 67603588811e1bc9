"""Property-based cross-backend equivalence: every backend, dtype, loss, option and shape.

Each generated case is computed by every installed backend that has the
dtype, and compared with an independent float64 NumPy reference
(``tests/support/reference.py``) computed from the same dtype-rounded inputs. Backends
that each sit within the tolerance of the reference agree with each other
within twice that. Tolerances are in ``TOLERANCE`` and in docs/conventions.md.

Reproduce a failure with ``pytest tests/engine/test_equivalence.py --hypothesis-seed=N``
(hypothesis prints the seed and the falsifying example); the number of cases is
``MSEPLUG_HYPOTHESIS_EXAMPLES`` (default 300). With ``CI`` set, the cases are
derandomized (the same every run; see tests/conftest.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from equivalence_cases import EXAMPLES, LIBS, Case, cases, check_case
from hypothesis import HealthCheck, given, settings
from loss_table import NAMES, in_domain, skip_if_refused

import mseplug


@pytest.mark.slow  # every backend on every drawn case
@settings(max_examples=EXAMPLES, deadline=None, print_blob=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=cases())
def test_backends_agree_with_the_float64_reference(case: Case) -> None:
    assert check_case(case) >= 1


@pytest.mark.parametrize("loss", NAMES)
def test_exact_ties_give_zero_gradients_everywhere(loss: str) -> None:
    skip_if_refused(loss, weighted=True, outputs=2)
    y, _ = in_domain(loss, np.array([[1.0, -2.0], [3.0, 0.5], [0.0, 7.0]]), 0.0)
    for name, lib in LIBS.items():
        gradient = mseplug.grad(loss, lib.asarray(y), lib.asarray(y.copy()),
                                sample_weight=lib.asarray([0.5, 1.0, 2.0]))
        assert np.all(lib.to_numpy(gradient) == 0.0), f"{name} {loss}"

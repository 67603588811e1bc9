"""Timing and memory helpers shared by ``mseplug bench`` and every script in ``benchmarks/``.

Two callables are compared *side by side*: their timings alternate (ABBA
order) for ``repeat`` rounds and the median seconds per call of each is
reported, so drift of a busy machine hits both alike. Each timing runs a
callable enough times to last about ``budget`` seconds, and every timing, of
mseplug and of the anchor alike, starts with an untimed call of the same
callable: a library that went cold while the other one ran (BLAS threads gone
to sleep, caches filled with the other side's data) is woken before the clock
starts, never inside it. No test ever asserts on these numbers.

Examples
--------
>>> import numpy as np
>>> a = np.ones(1000)
>>> ours, theirs = compare(lambda: a.sum(), lambda: np.add.reduce(a), repeat=3, budget=0.001)
>>> ours > 0 and theirs > 0
True
"""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

Call = Callable[[], Any]


def per_call(function: Call, number: int) -> float:
    """Seconds per call of ``function`` over ``number`` back-to-back calls."""
    start = time.perf_counter()
    for _ in range(number):
        function()
    return (time.perf_counter() - start) / number


def warm(function: Call) -> Call:
    """Call ``function`` once, untimed, and return it: the warm-up before a timing."""
    function()
    return function


def warm_per_call(function: Call, number: int) -> float:
    """:func:`per_call` after an untimed warm-up call of the same function."""
    return per_call(warm(function), number)


def calls_for(budget: float, *functions: Call) -> int:
    """How many calls of the slowest of ``functions`` take about ``budget`` seconds (>= 1).

    Each function's cost is the fastest of three warm single calls, so a cold
    first call (a compilation, a thread pool waking up) never sets the count.
    """
    single = max(max(min(warm_per_call(function, 1) for _ in range(3)) for function in functions),
                 1e-7)
    if single < budget / 10:  # small: measure again over a few calls, less noise
        single = max(max(warm_per_call(function, 5) for function in functions), 1e-7)
    return max(1, int(budget / single))


def compare(ours: Call, theirs: Call, *, repeat: int, budget: float = 0.02) -> tuple[float, float]:
    """Median seconds per call of ``ours`` and of ``theirs``, timed alternately (ABBA).

    Every timing of either side starts with an untimed warm-up call.
    """
    ours(), theirs()  # the first calls: compile, fill caches, reject broken cases early
    number = calls_for(budget, ours, theirs)
    first: list[float] = []
    second: list[float] = []
    gc.collect()
    for round_ in range(max(1, repeat)):
        if round_ % 2:
            second.append(warm_per_call(theirs, number))
            first.append(warm_per_call(ours, number))
        else:
            first.append(warm_per_call(ours, number))
            second.append(warm_per_call(theirs, number))
    return statistics.median(first), statistics.median(second)


def interleaved(named: dict[str, Call], repeats: int) -> dict[str, float]:
    """Median seconds of one call of each function, measured round-robin.

    Every function runs the same number of times in the same order (each timing
    after an untimed warm-up call of the same function), so it suits collective
    operations timed on several ranks at once.
    """
    for function in named.values():
        function()  # the first calls: compile, connect
    times: dict[str, list[float]] = {name: [] for name in named}
    for _ in range(max(1, repeats)):
        for name, function in named.items():
            times[name].append(warm_per_call(function, 1))
    return {name: statistics.median(values) for name, values in times.items()}


def median_time(function: Call, *, repeat: int, budget: float = 0.02) -> float:
    """Median seconds per call of one callable, each timing after a warm-up call."""
    function()
    number = calls_for(budget, function)
    gc.collect()
    return statistics.median(warm_per_call(function, number) for _ in range(max(1, repeat)))


def peak_bytes(function: Call) -> int:
    """Peak memory allocated through Python's and NumPy's allocators during one call."""
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def seconds(value: float) -> str:
    """A duration for a table: ``'3.1 ms'``, ``'850 ns'``.

    Examples
    --------
    >>> seconds(0.0031), seconds(8.5e-7), seconds(2.0)
    ('3.1 ms', '850 ns', '2 s')
    """
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value / 1e-9:.3g} ns"

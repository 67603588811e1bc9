"""A progress bar on stderr for long inputs: tqdm when installed, else a plain line.

It appears only on a terminal, and only once the work has taken more than
``delay`` seconds, so short runs and pipes (``2> log``) stay clean. Closing
it clears its line, so whatever is printed next (results, an error) starts on
a line of its own.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any, TextIO


class Progress:
    """Counts rows; ``total`` may be unknown (``None``). Use as a context manager."""

    def __init__(self, total: int | None, *, hidden: bool = False, delay: float = 1.0,
                 stream: TextIO | None = None) -> None:
        self.total, self.done, self.delay = total, 0, delay
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = not hidden and callable(isatty) and bool(isatty())
        self.shown = False
        self._start = time.monotonic()
        self._bar: Any = None
        self._width = 0

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def advance(self, rows: int) -> None:
        self.done += rows
        if not self.enabled:
            return
        if not self.shown:
            if time.monotonic() - self._start < self.delay:
                return
            if self._show():  # a tqdm bar, starting at the rows done so far
                return
        if self._bar is not None:
            self._bar.update(rows)
        else:
            share = f" ({100 * self.done / self.total:.1f}%)" if self.total else ""
            text = f"{self.done:,} {'row' if self.done == 1 else 'rows'}{share}"
            self._width = max(self._width, len(text))
            self.stream.write(f"\r{text}")
            self.stream.flush()

    def _show(self) -> bool:
        """Start showing; whether a tqdm bar (which already counts ``done``) was made."""
        self.shown = True
        try:
            from tqdm import tqdm
        except ImportError:
            return False
        self._bar = tqdm(total=self.total, initial=self.done, unit=" rows", unit_scale=True,
                         file=self.stream, leave=False)  # "12.3k rows", "4.5k rows/s"
        return True

    def close(self) -> None:
        """Clear the bar's line (idempotent)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.shown and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0

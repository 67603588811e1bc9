"""A progress bar on stderr: tqdm when installed, else a plain percentage line."""

from __future__ import annotations

import sys
from typing import Any


class Progress:
    """Counts rows; ``total`` may be unknown (``None``)."""

    def __init__(self, total: int | None, *, hidden: bool = False) -> None:
        self.total, self.done, self.hidden = total, 0, hidden
        self._bar: Any = None
        if not hidden:
            try:
                from tqdm import tqdm

                self._bar = tqdm(total=total, unit="rows", unit_scale=True, file=sys.stderr)
            except ImportError:
                pass

    def advance(self, rows: int) -> None:
        self.done += rows
        if self.hidden:
            return
        if self._bar is not None:
            self._bar.update(rows)
        else:
            share = f"{100 * self.done / self.total:5.1f}%" if self.total else ""
            print(f"\r{self.done} rows {share}", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif not self.hidden:
            print(file=sys.stderr)

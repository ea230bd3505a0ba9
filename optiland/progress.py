"""Progress of long commands: the stage, time elapsed, best plan and bound (gap) as they improve, and townships or
points done out of total.

A base module (any layer may import it): the pipeline, the solver's watchdog and the analyses report to
`current()`, which does nothing unless a command installed a display with `reporting(...)`. `Display` shows one
live line on a terminal and, when the stream is not a terminal (a log file, a pipe, CI), prints a plain line every
`every` seconds instead, and one at each change of stage.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any


class Reporter:
    """Receives progress; this base class ignores it."""

    def stage(self, name: str, done: int | None = None, total: int | None = None) -> None:
        """A new stage (its best plan and bound start afresh), with units done of total where it counts them."""

    def step(self, done: int, total: int | None = None) -> None:
        """Units (townships, points, runs) done of total in the current stage."""

    def incumbent(self, objective: float | None, bound: float | None) -> None:
        """The best plan's objective and the best bound proven so far in the current solve."""


_current: Reporter = Reporter()
_lock = threading.Lock()


def current() -> Reporter:
    """The reporter of the running command (a no-op one outside a command)."""
    return _current


@contextmanager
def reporting(reporter: Reporter) -> Iterator[Reporter]:
    """Install `reporter` for the block (then put the previous one back)."""
    global _current
    with _lock:
        before, _current = _current, reporter
    try:
        yield reporter
    finally:
        with _lock:
            _current = before
        close = getattr(reporter, "close", None)
        if close is not None:
            close()


def gap_of(objective: float | None, bound: float | None) -> float | None:
    """|bound - objective| / |objective| (as the solver reports its gap), None without both."""
    if objective is None or bound is None:
        return None
    if objective == bound:
        return 0.0
    return abs(bound - objective) / max(abs(objective), 1e-9)


class Display(Reporter):
    """A live status line on a terminal (rich), or plain lines every `every` seconds on any other stream."""

    def __init__(self, stream: IO[str], every: float = 5.0, live: bool | None = None) -> None:
        self.pid = os.getpid()  # a forked worker inherits this object: it stays silent there
        self.stream = stream
        self.every = every
        self.live = bool(getattr(stream, "isatty", lambda: False)()) if live is None else live
        self.began = time.perf_counter()
        self.name = "starting"
        self.done: int | None = None
        self.total: int | None = None
        self.objective: float | None = None
        self.bound: float | None = None
        self._state = threading.Lock()
        self._stop = threading.Event()
        self._bar: Any = None
        if self.live:
            from rich.console import Console
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                 console=Console(file=stream), transient=True)
            self._task = self._bar.add_task(self.text(with_time=False), total=None)
            self._bar.start()
        else:
            self._thread = threading.Thread(target=self._tick, daemon=True)
            self._thread.start()

    def text(self, with_time: bool = True) -> str:
        """The status: stage, units done of total, best plan, bound and gap (and the time elapsed)."""
        with self._state:
            parts = [self.name]
            if self.done is not None:
                parts.append(f"{self.done} of {self.total}" if self.total is not None else f"{self.done} done")
            if self.objective is not None:
                best = f"best {self.objective:.6g}"
                if self.bound is not None:
                    gap = gap_of(self.objective, self.bound)
                    best += f", bound {self.bound:.6g}" + (f", gap {gap:.2e}" if gap is not None else "")
                parts.append(best)
        line = "; ".join(parts)
        return f"[{time.perf_counter() - self.began:7.1f} s] {line}" if with_time else line

    def _show(self) -> None:
        if self._bar is not None:
            self._bar.update(self._task, description=self.text(with_time=False))

    def _print(self) -> None:
        print(self.text(), file=self.stream, flush=True)

    def _tick(self) -> None:
        while not self._stop.wait(self.every):
            self._print()

    def stage(self, name: str, done: int | None = None, total: int | None = None) -> None:
        """Show the new stage at once (a plain line too)."""
        if os.getpid() != self.pid:
            return
        with self._state:
            self.name, self.done, self.total = name, done, total
            self.objective = self.bound = None
        self._show() if self.live else self._print()

    def step(self, done: int, total: int | None = None) -> None:
        """Units done of total."""
        if os.getpid() != self.pid:
            return
        with self._state:
            self.done = done
            if total is not None:
                self.total = total
        self._show()

    def incumbent(self, objective: float | None, bound: float | None) -> None:
        """A better plan or bound."""
        if os.getpid() != self.pid:
            return
        with self._state:
            changed = (objective, bound) != (self.objective, self.bound)
            self.objective, self.bound = objective, bound
        if changed:
            self._show()

    def close(self) -> None:
        """Stop the line or the timer."""
        self._stop.set()
        if self._bar is not None:
            self._bar.stop()

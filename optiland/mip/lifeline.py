"""Child processes that die with their parent, whatever kills the parent.

A solver child or a pool worker whose parent is killed (SIGKILL, SIGTERM from `kill`, `timeout` or a service
manager) must not run on, re-parented to init, holding its memory. `die_with_parent`, called first thing in the
child, asks Linux to send it SIGKILL when its parent dies (prctl PR_SET_PDEATHSIG; the "parent" is the thread that
started it, so a pool or solver child must be started by a thread that outlives it: optiland's callers wait for
their children), closes the inherited read end of the parent's pipe (so that, on any system, the child's next
message fails once the parent is gone) and, where there is no prctl, watches its parent id from a daemon thread.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

PR_SET_PDEATHSIG = 1
POLL_SECONDS = 0.5


def _prctl_death_signal(sig: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent: int) -> None:
    event = threading.Event()
    while not event.wait(POLL_SECONDS):
        if os.getppid() != parent:
            os._exit(1)


def die_with_parent(parent: int, close: Iterable[int] = ()) -> None:
    """Call first in a child process started by process `parent`: the child is killed when the parent dies."""
    for fd in close:
        try:
            os.close(fd)
        except OSError:
            pass
    if not _prctl_death_signal(signal.SIGKILL):
        threading.Thread(target=_watch, args=(parent,), daemon=True, name="optiland-lifeline").start()
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)


def guarded(target: Callable[..., Any], close: Iterable[int] = ()) -> Callable[..., Any]:
    """`target` wrapped to call `die_with_parent` first (for a forked multiprocessing.Process; not picklable)."""
    parent = os.getpid()
    fds = tuple(close)

    def run(*args: Any, **kwargs: Any) -> Any:
        die_with_parent(parent, fds)
        return target(*args, **kwargs)

    return run

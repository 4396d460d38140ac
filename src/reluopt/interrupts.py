"""Ctrl-C: a method interrupted by the user returns its best so far instead of dying.

``interruptible(target)`` turns SIGINT into ``target.interrupted = True`` (an ``Anytime``
tracker, or a ``StopFlag``); the running code polls the flag and stops by itself, so a
solver callback inside C code is never unwound by an exception. Blocks nest.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class StopFlag:
    """A bare ``interrupted`` flag for ``interruptible``, for code without an Anytime."""

    def __init__(self) -> None:
        self.interrupted = False


#: Targets of the ``interruptible`` blocks now open in this process, innermost last.
_ACTIVE: list = []


def _on_sigint(signum, frame) -> None:
    """Ctrl-C: mark every open ``interruptible`` target. Never raises: the code that runs
    (possibly a solver callback inside C code) polls the flags and stops by itself."""
    for target in _ACTIVE:
        target.interrupted = True


def interrupt_requested() -> bool:
    """Whether Ctrl-C arrived inside an open ``interruptible`` block of this process.

    Returns
    -------
    bool
    """
    return any(getattr(t, "interrupted", False) for t in _ACTIVE)


def interrupt_handled() -> bool:
    """Whether an ``interruptible`` block is open, i.e. someone returns the best so far on Ctrl-C.

    Returns
    -------
    bool
    """
    return bool(_ACTIVE)


def catch_interrupts() -> None:
    """Install the flag-only Ctrl-C handler for good: for a pool's worker process, which gets
    the terminal's SIGINT with its parent and must survive it while idle (its running task
    stops by its own ``interruptible`` block, the parent decides what happens next)."""
    try:
        signal.signal(signal.SIGINT, _on_sigint)
    except ValueError:  # not in the main thread
        pass


@contextmanager
def interruptible(anytime: Any) -> Iterator[Any]:
    """Turn Ctrl-C into ``anytime.interrupted = True`` so the method returns its best so far.

    Blocks nest: one handler marks every open block's target, so a method run inside another
    (a heuristic phase of ``auto``, OBBT inside the MIP) stops both. A block entered after
    Ctrl-C reached an enclosing one starts interrupted. Outside the main thread no handler
    can be installed; the target is still registered, so an enclosing block's Ctrl-C
    reaches it.

    Parameters
    ----------
    anytime : Anytime or object
        Anything with an ``interrupted`` attribute (e.g. ``StopFlag``).

    Yields
    ------
    object
        ``anytime`` itself, registered until the block ends (the previous handler is restored).
    """
    installed = False
    previous = None
    try:
        previous = signal.getsignal(signal.SIGINT)
        if previous is not _on_sigint:
            signal.signal(signal.SIGINT, _on_sigint)
            installed = True
    except ValueError:  # not in the main thread
        pass
    if interrupt_requested():
        anytime.interrupted = True
    _ACTIVE.append(anytime)
    try:
        yield anytime
    finally:
        for i in range(len(_ACTIVE) - 1, -1, -1):   # by identity, innermost first
            if _ACTIVE[i] is anytime:
                del _ACTIVE[i]
                break
        if installed:
            signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)

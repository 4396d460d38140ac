"""The live progress line of the commands, and the one-line summary of a progress event.

Methods report progress as dicts (``elapsed``, ``method``, ``phase``, ``incumbent``, ``bound``,
``gap``, counters); ``ProgressLine`` turns them into a line on stderr (live on a terminal, one
line every few seconds in a log with ``--progress``), so that a long run shows where it is.
"""

from __future__ import annotations

import math
import sys
import threading
import time

#: Help text of ``--progress`` (every command with a live progress line).
PROGRESS_HELP = ("when stderr is not a terminal (a log file, a pipe), print a progress line every few seconds; "
                 "on a terminal a live line is shown anyway (unless --quiet)")


def add_progress_arguments(parser) -> None:
    """Add ``--quiet`` and ``--progress``, for commands that show a ``ProgressLine``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The command's parser.
    """
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress display")
    parser.add_argument("--progress", action="store_true", help=PROGRESS_HELP)


def progress_line(args) -> ProgressLine:
    """The ``ProgressLine`` that ``--quiet`` and ``--progress`` ask for.

    Parameters
    ----------
    args : argparse.Namespace

    Returns
    -------
    ProgressLine
    """
    return ProgressLine(enabled=not getattr(args, "quiet", False), log=getattr(args, "progress", False))


class ProgressLine:
    """Progress on stderr; pass an instance as a method's ``progress`` callback.

    On a terminal: one live line, rewritten in place (and kept ticking by a background
    thread, so the clock moves during a long phase that reports nothing), erased by
    ``close()``. Not on a terminal (a log, a pipe): nothing, unless ``log=True``
    (``--progress``), which prints one line every ``log_every`` seconds.

    Parameters
    ----------
    enabled : bool, optional
        False shows nothing (``--quiet``).
    every : float, optional
        Least seconds between two redraws on a terminal.
    stream : file, optional
        Where to write (default stderr).
    log, log_every : optional
        See above.
    """

    def __init__(self, enabled: bool = True, every: float = 0.2, stream=None, log: bool = False,
                 log_every: float = 5.0) -> None:
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled = enabled and (self.tty or log)
        self.every = every if self.tty else log_every
        self._last = -math.inf
        self._width = 0
        self._info: dict | None = None
        self._info_time = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def __call__(self, info: dict) -> None:
        if not self.enabled or self._stop.is_set():
            return
        now = time.perf_counter()
        with self._lock:
            new_phase = self._info is None or info.get("phase") != self._info.get("phase")
            self._info, self._info_time = dict(info), now
            if now - self._last < self.every and not (new_phase and self.tty):
                return
            self._draw(self._info)
        if self._ticker is None and not self._stop.is_set():
            self._ticker = threading.Thread(target=self._tick, daemon=True, name="reluopt-progress")
            self._ticker.start()

    def _draw(self, info: dict) -> None:
        self._last = time.perf_counter()
        line = format_progress(info)
        if self.tty:
            pad = max(0, self._width - len(line))
            self.stream.write("\r" + line + " " * pad)
            self._width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def _tick(self) -> None:
        """Redraw with the clock moved on when the method has been silent for a while."""
        period = 1.0 if self.tty else self.every
        while not self._stop.wait(period):
            with self._lock:
                if self._stop.is_set() or self._info is None:
                    continue
                now = time.perf_counter()
                if now - self._last < period:
                    continue
                info = dict(self._info)
                info["elapsed"] = info.get("elapsed", 0.0) + (now - self._info_time)
                try:
                    self._draw(info)
                except (OSError, ValueError):    # the stream went away
                    return

    def close(self) -> None:
        """Stop the ticker and erase the live line."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=2.0)
        with self._lock:
            if self.enabled and self.tty and self._width:
                self.stream.write("\r" + " " * self._width + "\r")
                self.stream.flush()
                self._width = 0


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{v:.6g}"


def format_gap(gap) -> str:
    """Format a relative gap as every command prints it, so that reports read alike.

    Parameters
    ----------
    gap : float or None
        The relative gap.

    Returns
    -------
    str
        E.g. ``8.21e-05 (relative)``; ``-`` when the gap is unknown or not finite.
    """
    if gap is None or not math.isfinite(gap):
        return "-"
    return f"{gap:.3g} (relative)"


#: How verify's phases read in the progress line.
PHASE_NAMES = {"bab": "branch and bound", "mip": "MIP", "split": "input splitting", "exact": "exact"}


def format_progress(info: dict) -> str:
    """One progress line: time, method, phase (if any), incumbent, bound, relative gap, counters.

    Parameters
    ----------
    info : dict
        A progress event.

    Returns
    -------
    str
    """
    parts = [f"{info.get('elapsed', 0.0):7.1f}s", f"{info.get('method', '')}"]
    if info.get("phase"):
        word, _, rest = str(info["phase"]).partition(" ")
        parts.append(f"[{' '.join(filter(None, (PHASE_NAMES.get(word, word), rest)))}]")
    if info.get("method") == "verify":     # verify's incumbent is the best margin found (sat at >= 0)
        parts += [f"best margin {_fmt(info.get('incumbent'))}", f"margin bound {_fmt(info.get('bound'))}"]
    else:
        parts += [f"incumbent {_fmt(info.get('incumbent'))}", f"bound {_fmt(info.get('bound'))}"]
    if "gap" in info:
        parts.append(f"gap {format_gap(info.get('gap'))}")
    if info.get("pairs") is not None and info.get("pairs_open") is not None:
        parts.append(f"pairs open {info['pairs_open']}/{info['pairs']}")
    for key in ("nodes", "open", "nodes_per_s"):
        if key in info and info[key] is not None:
            value = info[key]
            label = "nodes/s" if key == "nodes_per_s" else key
            parts.append(f"{label} {value:.0f}" if isinstance(value, float) else f"{label} {value}")
    return "  ".join(parts)

"""How reluopt runs HiGHS safely: a silent instance, one process-wide thread policy, a checked run.

HiGHS keeps one task scheduler per process and prints a banner when the process's first instance
is made; both can break a run that looks fine (a scheduler clash fails with no solution, the
banner corrupts ``--json -``). Every Highs instance of reluopt comes from ``new_highs`` and every
run goes through ``CheckedHighs.run``, and ``run_ok`` says whether a run's outcome can be trusted.
The back-end (``highs``) and the fast paths (region LPs, OBBT) share these.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import sys
import threading
import time

import highspy

_first_instance = True


@contextlib.contextmanager
def _silenced_stdout_fd():
    """Send file descriptor 1 to /dev/null (C-level prints), restoring it afterwards."""
    fd = 1                      # the C library writes to descriptor 1, whatever sys.stdout is
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    try:
        saved = os.dup(fd)
    except OSError:             # no descriptor 1 at all: nothing can be printed there
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        yield
    finally:
        with contextlib.suppress(Exception):
            ctypes.CDLL(None).fflush(None)
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


#: Threads every Highs instance of reluopt uses unless a caller sets the option itself.
DEFAULT_THREADS = 1

#: Thread count of HiGHS's process-wide task scheduler as reluopt last set it (None: not yet).
_scheduler_threads: int | None = None
#: Runs abandoned after a stop request (see ``_run_watched``) that may still be stopping.
_abandoned: list[threading.Thread] = []

#: At interpreter exit, how long to wait for abandoned runs to reach their next stop poll: a
#: process that exits while HiGHS still runs in a daemon thread can abort in C++ teardown
#: ("terminate called without an active exception") instead of exiting with its own code.
EXIT_GRACE = 10.0


@atexit.register
def _join_abandoned() -> None:
    deadline = time.monotonic() + EXIT_GRACE
    while _abandoned and time.monotonic() < deadline:
        _abandoned.pop().join(max(deadline - time.monotonic(), 0.0))


def _use_scheduler(threads: int) -> None:
    """Make HiGHS's global scheduler match ``threads``.

    HiGHS starts one task scheduler per process, sized by the first ``run()``; a later run
    asking for another thread count fails with ``kError`` and leaves no solution. That
    error once passed as a bound of 0, so every run goes through here: the scheduler is
    reset whenever the requested count changes, whatever ran before in the process.
    """
    global _scheduler_threads
    if _scheduler_threads != threads:
        while _abandoned:   # never reset the scheduler under a run that is still stopping
            _abandoned.pop().join()
        highspy.Highs.resetGlobalScheduler(True)
        _scheduler_threads = threads


class CheckedHighs(highspy.Highs):
    """A Highs instance whose ``run()`` follows reluopt's thread policy.

    The caller still checks the returned status (see ``run_ok``); a scheduler clash left by
    code outside reluopt (a user's own Highs in the same process) is repaired by one retry.
    """

    def run(self):  # noqa: D102 - same contract as highspy.Highs.run
        """Solve the model as `highspy.Highs.run` does, with the scheduler sized for this instance's threads.

        Returns
        -------
        highspy.HighsStatus
            The status of the run, unchecked: callers check it with the model status (``run_ok``).
        """
        global _scheduler_threads
        threads = int(self.getOptionValue("threads")[1])  # (status, value)
        _use_scheduler(threads)
        status = super().run()
        if status == highspy.HighsStatus.kError and self.getModelStatus() == highspy.HighsModelStatus.kNotset:
            _scheduler_threads = None
            _use_scheduler(threads)
            status = super().run()
        return status


def new_highs(threads: int = DEFAULT_THREADS) -> highspy.Highs:
    """A silent Highs instance following reluopt's thread policy (``threads`` per run).

    highspy 1.16 prints its banner to stdout when the process's first instance is
    constructed, before ``output_flag`` can be set; that line would corrupt ``--json -``
    output, so the first construction runs with stdout silenced.

    Parameters
    ----------
    threads : int, optional

    Returns
    -------
    CheckedHighs
    """
    global _first_instance
    if _first_instance:
        _first_instance = False
        with _silenced_stdout_fd():
            h = CheckedHighs()
    else:
        h = CheckedHighs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", int(threads))
    return h


#: Model statuses after which HiGHS's reported solution and bounds mean what they say.
TRUSTED_MODEL_STATUSES = frozenset({
    highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kInfeasible,
    highspy.HighsModelStatus.kUnboundedOrInfeasible, highspy.HighsModelStatus.kUnbounded,
    highspy.HighsModelStatus.kTimeLimit, highspy.HighsModelStatus.kInterrupt,
    highspy.HighsModelStatus.kHighsInterrupt, highspy.HighsModelStatus.kIterationLimit,  # type: ignore[attr-defined]  # not in the stubs
    highspy.HighsModelStatus.kSolutionLimit,
    highspy.HighsModelStatus.kObjectiveBound, highspy.HighsModelStatus.kObjectiveTarget,
})


def run_ok(h: highspy.Highs) -> tuple[bool, str]:
    """Run ``h`` and say whether its outcome can be trusted: ``(ok, message)``.

    Not ok when ``run()`` returns ``kError`` or the model status is an error or unknown
    (solve, presolve or postsolve error, not set, ...). Callers turn a failed run into an
    error or an open node, never into a bound.

    Parameters
    ----------
    h : highspy.Highs

    Returns
    -------
    tuple of (bool, str)
    """
    run_status = h.run()
    model_status = h.getModelStatus()
    if run_status == highspy.HighsStatus.kError or model_status not in TRUSTED_MODEL_STATUSES:
        return False, f"HiGHS run returned {run_status.name} with model status {h.modelStatusToString(model_status)!r}"
    return True, ""

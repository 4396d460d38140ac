"""Former home of the HiGHS back-end, kept importable: see ``reluopt.milp.backends.highs``."""

from .backends.base import ERROR, SolveOutput
from .backends.highs import (
    DEFAULT_THREADS,
    STOP_GRACE,
    TRUSTED_MODEL_STATUSES,
    CheckedHighs,
    HighsBackend,
    HighsInstance,
    _silenced_stdout_fd,
    model_status,
    new_highs,
    run_ok,
    set_run_time_limit,
    solve_highs,
    subscribe_stop,
    to_highs,
)

__all__ = ["DEFAULT_THREADS", "ERROR", "STOP_GRACE", "TRUSTED_MODEL_STATUSES", "CheckedHighs", "HighsBackend",
           "HighsInstance", "SolveOutput", "_silenced_stdout_fd", "model_status", "new_highs", "run_ok",
           "set_run_time_limit", "solve_highs", "subscribe_stop", "to_highs"]

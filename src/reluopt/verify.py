"""Kept for ``from reluopt.verify import verify`` (the README's import before the
``reluopt.verification`` package): the names now live there."""

from .verification.driver import STATUSES, Verdict, verify

__all__ = ["STATUSES", "Verdict", "verify"]

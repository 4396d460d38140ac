"""The VNN-LIB tokenizer: s-expressions with line and column numbers, and the reader's clock.

A VNN-LIB file is a sequence of parenthesised lists (SMT-LIB syntax). ``read_sexprs`` yields
each top-level list as soon as it closes, as nested ``SList`` objects holding ``Token``
atoms; both remember where they are, so every error names its line. The reader keeps its own
stack (no recursion: a formula may nest 200k deep) and polls a ``Clock``: a huge file stops
with ``VnnlibTimeout`` when its time limit is spent.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator

from ..errors import ParseError, ProblemError

_TOKEN = re.compile(r"[()]|;[^\n]*|[^\s();]+")


class VnnlibTimeout(ParseError):
    """Reading a VNN-LIB file ran out of its ``time_limit`` (the property was not read)."""


class Clock:
    """The parse's time limit, checked every ``every`` steps (``perf_counter`` is not free).

    Parameters
    ----------
    label : str
        Prefix of error messages (the file name and ``": "``, or empty).
    time_limit : float or None
        Seconds the reading may take; None or inf: no limit.
    start : float, optional
        ``time.perf_counter()`` value the limit counts from (default: now), so that reading
        the file counts too.
    every : int, default 2048
        Steps between two looks at the clock.

    Raises
    ------
    ProblemError
        A negative or NaN ``time_limit``.
    """

    __slots__ = ("deadline", "limit", "label", "count", "every")

    def __init__(self, label: str, time_limit: float | None, start: float | None = None, every: int = 2048):
        if time_limit is not None and not time_limit >= 0:     # also rejects NaN
            raise ProblemError(f"{label}time limit must be a non-negative number of seconds, got {time_limit}")
        self.label = label
        self.limit = time_limit
        begin = time.perf_counter() if start is None else start
        self.deadline = None if time_limit is None or math.isinf(time_limit) else begin + time_limit
        self.count = 0
        self.every = every

    def tick(self, line: int, steps: int = 1) -> None:
        """Count ``steps`` of work and look at the clock every ``every`` of them.

        Parameters
        ----------
        line : int
            Line being read (named in the timeout's message).
        steps : int, default 1
            Work done since the last call.

        Raises
        ------
        VnnlibTimeout
            The time limit has run out.
        """
        self.count += steps
        if self.count >= self.every:
            self.count = 0
            self.check(line)

    def check(self, line: int) -> None:
        """Raise ``VnnlibTimeout`` (naming ``line``) if the time limit has run out.

        Parameters
        ----------
        line : int
            Line being read.
        """
        if self.deadline is not None and time.perf_counter() > self.deadline:
            raise VnnlibTimeout(f"{self.label}the time limit of {self.limit:g} s ran out while parsing "
                                f"(at line {line}); the property was not read")


class Token:
    """One atom (a number, a variable, an operator) and where it is.

    Parameters
    ----------
    text : str
        The atom as written.
    line, col : int
        Its position (1-based).
    """

    __slots__ = ("text", "line", "col")

    def __init__(self, text: str, line: int, col: int):
        self.text = text
        self.line = line
        self.col = col

    def __repr__(self) -> str:
        return f"Token({self.text!r}, {self.line}, {self.col})"


class SList(list):
    """A parenthesised list (of ``Token`` and ``SList`` items) remembering where it opened.

    Parameters
    ----------
    line, col : int
        Position of its ``(`` (1-based).
    """

    __slots__ = ("line", "col")

    def __init__(self, line: int, col: int):
        super().__init__()
        self.line = line
        self.col = col


def parse_error(label: str, line: int, col: int | None, msg: str) -> ParseError:
    """A ``ParseError`` that names the file, line and column, so the user can find the spot.

    Parameters
    ----------
    label : str
        The file name and ``": "``, or empty.
    line : int
        Line of the problem.
    col : int or None
        Its column, if known.
    msg : str
        What is wrong.

    Returns
    -------
    ParseError
        To be raised by the caller.
    """
    pos = f"line {line}" + (f", column {col}" if col is not None else "")
    return ParseError(f"{label}{pos}: {msg}")


def read_sexprs(text: str, label: str, clock: Clock | None = None) -> Iterator[SList]:
    """Yield each top-level list of ``text`` as soon as it closes.

    No recursion and no token list: the text is scanned line by line, so a token's line and
    column come for free, and repeated atoms share one string.

    Parameters
    ----------
    text : str
        VNN-LIB source.
    label : str
        Prefix of error messages (the file name and ``": "``, or empty).
    clock : Clock, optional
        Time limit of the reading (default: none).

    Returns
    -------
    Iterator[SList]
        The top-level lists, in order.

    Raises
    ------
    ParseError
        Unbalanced parentheses (reported where they open or close) or an atom outside any list.
    VnnlibTimeout
        ``clock`` ran out.
    """
    clock = clock or Clock(label, None)
    stack: list[SList] = []
    names: dict[str, str] = {}
    finditer = _TOKEN.finditer
    n = len(text)
    pos, line, count = 0, 1, 0
    while True:
        end = text.find("\n", pos)
        last = end < 0
        if last:
            end = n
        for m in finditer(text, pos, end):
            tok = m.group()
            c = tok[0]
            if c == "(":
                stack.append(SList(line, m.start() - pos + 1))
            elif c == ")":
                if not stack:
                    raise parse_error(label, line, m.start() - pos + 1,
                                      "unbalanced parenthesis: ')' has no matching '('")
                done = stack.pop()
                if stack:
                    stack[-1].append(done)
                else:
                    yield done
            elif c != ";":
                if not stack:
                    raise parse_error(label, line, m.start() - pos + 1, f"unexpected {tok!r} outside parentheses")
                stack[-1].append(Token(names.setdefault(tok, tok), line, m.start() - pos + 1))
            count += 1
            if count >= 4096:
                count = 0
                clock.check(line)
        if last:
            break
        pos = end + 1
        line += 1
    if stack:
        s = stack[-1]
        raise parse_error(label, s.line, s.col, "unbalanced parenthesis: '(' is never closed")


def show(node, limit: int = 60) -> str:
    """``node`` as text for an error message, cut after ``limit`` characters.

    Iterative: nodes may nest deeply.

    Parameters
    ----------
    node : Token or SList
        What to show.
    limit : int, default 60
        Longest text returned (a cut one ends with ``...``).

    Returns
    -------
    str
    """
    parts: list[str] = []
    size = 0
    stack: list = [node]
    while stack and size <= limit:
        item = stack.pop()
        if isinstance(item, str):          # a closing parenthesis or a separator
            text = item
        elif isinstance(item, Token):
            text = item.text
        else:
            text = "("
            stack.append(")")
            for k in range(len(item) - 1, -1, -1):
                stack.append(item[k])
                if k:
                    stack.append(" ")
        parts.append(text)
        size += len(text)
    s = "".join(parts)
    return s if len(s) <= limit and not stack else s[: limit - 3] + "..."

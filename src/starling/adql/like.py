"""LIKE and ILIKE in time linear in the value: no regular expression, no backtracking.

A regular expression backtracks: ``%a%a%a%a%a%a%a%a%b`` against fifty a's took Python's ``re`` 28 s,
trying every way to place eight runs, while the filter stage waited. Here a pattern is split at its
``%`` into pieces of fixed length (characters and ``_``). The first piece must start the value, the
last must end it, and each piece between is found at its leftmost place after the one before. The
leftmost place never loses a match (whatever the rest of the pattern matches after a later place, it
matches after an earlier one too), so nothing is ever tried twice: a value of n characters costs at
most n times the pattern's length in character comparisons, usually one ``find`` per piece. Without
``_``, the pieces are found for the whole column at once (``numpy.strings``); with it, value by value.

``ESCAPE 'c'`` makes the character after ``c`` literal; it must be ``%``, ``_`` or ``c`` itself (SQL).
``x ILIKE p`` is ``LOWER(x) LIKE LOWER(p)``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

ANY = None  # a '_' in a piece: any one character
RUN = ""  # a '%' in the pattern: any characters (every character of the pattern is one long)
CHUNK = 512  # values matched one by one between two looks at the clock


class PatternError(ValueError):
    """A pattern that cannot be read (an escape character at its end, or before an ordinary one)."""


class Piece:
    """Characters of fixed length, some of them '_' (ANY)."""

    __slots__ = ("chars", "regex", "text")

    def __init__(self, chars: tuple[str | None, ...]) -> None:
        self.chars = chars
        wild = ANY in chars
        self.text = "" if wild else "".join(c or "" for c in chars)  # the characters, without '_'
        # With '_': an expression of fixed length, with no quantifier, so it cannot backtrack.
        expression = "".join("." if c is ANY else re.escape(c) for c in chars)
        self.regex = re.compile(expression, re.DOTALL) if wild else None

    def __len__(self) -> int:
        return len(self.chars)

    def at(self, value: str, index: int) -> bool:
        if self.regex is None:
            return value.startswith(self.text, index)
        return self.regex.match(value, index) is not None

    def find(self, value: str, start: int, stop: int) -> int:
        """The leftmost place of the piece within value[start:stop], else -1; O(len(value) * len(piece))."""
        if self.regex is None:
            return value.find(self.text, start, stop)
        found = self.regex.search(value, start, stop)
        return -1 if found is None else found.start()


def _tokens(pattern: str, escape: str | None, fold: bool) -> list[str | None]:
    """The pattern as characters (escaped ones too), ANY for '_' and RUN for '%'."""
    if escape is not None and len(escape) != 1:
        raise PatternError("ESCAPE takes one character")
    tokens: list[str | None] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == escape:
            if index + 1 == len(pattern) or pattern[index + 1] not in ("%", "_", escape):
                raise PatternError(f"in a LIKE pattern, {escape!r} escapes only '%', '_' or itself")
            char = pattern[index + 1]
            index += 1
        elif char in "%_":
            tokens.append(ANY if char == "_" else RUN)
            index += 1
            continue
        tokens.extend(char.lower() if fold else char)  # 'İ'.lower() is two characters, as LOWER says
        index += 1
    return tokens


def _pieces(tokens: Sequence[str | None]) -> list[Piece]:
    pieces: list[Piece] = []
    current: list[str | None] = []
    for token in tokens:
        if token == RUN:
            pieces.append(Piece(tuple(current)))
            current = []
        else:
            current.append(token)
    pieces.append(Piece(tuple(current)))
    return pieces


class LikePattern:
    """A LIKE pattern, read once; ``match`` judges one value, ``match_array`` a column."""

    def __init__(self, pattern: str, escape: str | None = None, fold: bool = False) -> None:
        pieces = _pieces(_tokens(pattern, escape, fold))
        self.exact = len(pieces) == 1  # no '%': the whole value, of the pattern's length
        self.head, self.tail = pieces[0], pieces[-1]
        self.middle = [p for p in pieces[1:-1] if len(p)]
        self.wild = any(p.regex is not None for p in pieces)

    def match(self, value: str) -> bool:
        n = len(value)
        if self.exact:
            return n == len(self.head) and self.head.at(value, 0)
        stop = n - len(self.tail)
        if stop < len(self.head) or not self.head.at(value, 0) or not self.tail.at(value, stop):
            return False
        position = len(self.head)
        for piece in self.middle:
            found = piece.find(value, position, stop)
            if found < 0:
                return False
            position = found + len(piece)
        return True

    def match_array(self, values: npt.NDArray[Any], check: Callable[[], None] | None = None) -> Any:
        """Where a column (fixed-width strings, any shape) matches; ``check`` is called between chunks
        of values (it may raise to stop the work: a time budget)."""
        flat = np.ascontiguousarray(values).reshape(-1)
        if self.wild:
            matched = np.empty(len(flat), dtype=bool)
            for start in range(0, len(flat), CHUNK):
                if check is not None:
                    check()
                chunk = flat[start : start + CHUNK].tolist()
                matched[start : start + len(chunk)] = [self.match(v) for v in chunk]
        else:
            matched = self._match_columns(flat)
        return matched.reshape(np.shape(values))

    def _match_columns(self, flat: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
        """Without '_': each piece found in every value at once, leftmost after the previous."""
        if self.exact:
            return np.asarray(flat == self.head.text, dtype=bool)
        lengths = np.strings.str_len(flat)
        stop = lengths - len(self.tail)
        matched = stop >= len(self.head)
        if len(self.head):
            matched &= np.strings.startswith(flat, self.head.text)
        if len(self.tail):
            matched &= np.strings.endswith(flat, self.tail.text)
        position: Any = len(self.head)
        for piece in self.middle:
            found = np.strings.find(flat, piece.text, position, np.maximum(stop, 0))
            matched &= found >= 0
            position = found + len(piece)
        return np.asarray(matched, dtype=bool)

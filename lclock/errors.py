"""One shape for every error line of bad input: ``lclock <command>: error: <message>``.

The message names the flag or ``file:key`` first. Whatever the message carries (a key of a
settings file, a path, a value typed by the user), the line printed is one short line of
printable text: a newline or an escape sequence inside a hostile value can neither split
the line nor drive the terminal, and a megabyte-long value is cut in the middle.

A command raises :class:`BadInput` (or one of its kinds) and the dispatcher
(``lclock.cli``) prints the line and exits 2, in one place; a command that must print the
line itself calls :func:`fail`. Code that only builds a message calls :func:`shown` for
each foreign value it quotes.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TextIO

EXIT_BAD_INPUT = 2
MAX_MESSAGE = 600  # characters of one error line's message; longer ones are cut in the middle
_program = "lclock"


class BadInput(Exception):
    """Input a command cannot work with: a flag, a file or a folder, named first in the text.

    The one family of bad-input errors: ``lclock.cli`` turns any of them into one line on
    stderr and exit status 2 (no traceback), so a command only raises. Kinds that callers
    tell apart (a folder that is not a run, an unanswerable question) subclass it.
    """


def set_program(name: str) -> None:
    """The name the user typed: ``launcher.py`` prints its errors as ``launcher.py: error:``."""
    global _program
    _program = name


def prefix(command: str | None) -> str:
    """``lclock run``; ``lclock`` alone before a command is known; ``launcher.py`` for it."""
    if _program != "lclock" or not command:
        return _program
    return f"{_program} {command}"


def printable(text: str) -> str:
    """The text with every non-printable character written as its escape (``\\n``, ``\\x1b``)."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def cut(text: str, limit: int) -> str:
    """At most ``limit`` characters: the start and the end of a longer text, the middle elided."""
    if len(text) <= limit:
        return text
    tail = max(limit // 4, 1)
    head = max(limit - tail - 5, 1)
    return f"{text[:head]}[...]{text[-tail:]}"


def shown(value: object, limit: int = 60) -> str:
    """A foreign value as quoted in a message: its repr, short, on one line."""
    if isinstance(value, int) and value.bit_length() > 10_000:  # str() would be slow or refused
        return f"an integer of {value.bit_length()} bits"
    try:
        text = repr(value)
    except ValueError:  # an integer too long to print, inside a list
        text = "a value too large to show"
    return cut(printable(text), limit)


def one_line(message: object) -> str:
    """The message as one printable line of bounded length."""
    return cut(printable(str(message)), MAX_MESSAGE)


def error_line(command: str | None, message: object) -> str:
    return f"{prefix(command)}: error: {one_line(message)}"


def fail(command: str | None, message: object, stream: TextIO | None = None) -> int:
    """Print ``lclock <command>: error: <message>`` on stderr; return exit status 2.

    For a command that must print the line itself (a run that cleans up before it returns);
    any other command raises :class:`BadInput` and lets ``lclock.cli`` print it.
    """
    (stream or sys.stderr).write(error_line(command, message) + "\n")
    return EXIT_BAD_INPUT


def closest(word: str, known: Iterable[str]) -> str | None:
    """The known word a typo most likely meant, or None (the same rule for flags and keys)."""
    import difflib  # only on the way to an error: every command imports this module

    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return close[0] if close else None

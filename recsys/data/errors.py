"""The one exception type for bad input: its message says what is wrong and how to fix it."""

from __future__ import annotations

# A message is shown to a person (and, in hosted mode, to a stranger): it may quote a cell,
# never a file. Cells are cut to this many characters and shown with repr, so control
# characters, markup and very long values cannot reach the page.
EXCERPT_CHARS = 40
# The longest message a DataError raised by the data layer carries.
MAX_MESSAGE_CHARS = 600


class DataError(ValueError):
    """Raised for any input a person can fix (file, column, row, parameter).

    The message is shown to people verbatim, so it names the problem and the fix.
    """


def excerpt(value, limit: int = EXCERPT_CHARS) -> str:
    """A short, quoted rendering of one value for a message: ``'abc…'`` (with its length when cut)."""
    if isinstance(value, (bytes, bytearray)):
        text = bytes(value[: limit * 4]).decode("utf-8", errors="replace")
        full = len(value)
    else:
        text = value if isinstance(value, str) else str(value)
        full = len(text)
    if full <= limit and len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({full:,} characters)"


def shorten(message: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Cut an overlong message in the middle, keeping its start (what) and end (how to fix)."""
    if len(message) <= limit:
        return message
    head = limit * 2 // 3
    tail = limit - head - 3
    return f"{message[:head]} … {message[-tail:]}"

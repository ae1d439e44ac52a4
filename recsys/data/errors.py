"""The one exception type for bad input: its message says what is wrong and how to fix it."""


class DataError(ValueError):
    """Raised for any input a person can fix (file, column, row, parameter).

    The message is shown to people verbatim, so it names the problem and the fix.
    """

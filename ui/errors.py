"""Show bad input and failures as messages, never as tracebacks in the browser."""

from __future__ import annotations

import logging
from contextlib import contextmanager

import streamlit as st

from recsys.data.errors import DataError
from ui.text import md_escape

log = logging.getLogger("recsys.ui")


@contextmanager
def shown_errors(what: str):
    """Run a block; a DataError shows its own message, anything else a short apology and is logged."""
    try:
        yield
    except DataError as exc:  # messages quote file, column and id names from the input: escaped
        st.error(md_escape(exc), icon=":material/warning:")
    except Exception as exc:  # the browser gets a sentence, the server log the traceback
        log.exception("%s failed", what)
        st.error(f"{md_escape(what)} failed: {type(exc).__name__}: {md_escape(exc)}", icon=":material/error:")


def attempt(what: str, fn, *args, **kwargs):
    """Call ``fn``; on failure show the message and stop this page run (nothing below would work)."""
    with shown_errors(what):
        return fn(*args, **kwargs)
    st.stop()

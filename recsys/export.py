"""Tables written for spreadsheets: text that a spreadsheet would run as a formula is made inert.

A CSV cell that begins with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return, which
some spreadsheets skip before looking) is evaluated as a formula when the file is opened, so
a user id, title or run name such as ``=HYPERLINK("http://…", "click")`` from an uploaded
file would become a live formula on the downloader's machine (CSV injection). Such *text*
cells get a leading single quote, which spreadsheets read as "this is text" and do not show.
Numbers stay numbers, negative ones included; text that is just a number (an id "-1") is left
alone, since a spreadsheet reads it as that number and runs nothing.
"""

from __future__ import annotations

import re

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def neutralise_cell(value):
    """``value`` with a leading ``'`` if it is text a spreadsheet would evaluate; anything else unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells, column names and index labels cannot run as formulas."""
    out = frame.copy()
    for position, dtype in enumerate(out.dtypes):
        if pd.api.types.is_object_dtype(dtype) or isinstance(dtype, (pd.StringDtype, pd.CategoricalDtype)):
            column = out.iloc[:, position]
            if isinstance(dtype, pd.CategoricalDtype):
                column = column.astype(object)
            out.isetitem(position, column.map(neutralise_cell, na_action="ignore"))
    out.columns = _neutralise_index(out.columns)
    out.index = _neutralise_index(out.index)
    return out


def _neutralise_index(index: pd.Index) -> pd.Index:
    if isinstance(index, pd.MultiIndex):
        return index.map(lambda labels: tuple(neutralise_cell(label) for label in labels))
    if pd.api.types.is_object_dtype(index.dtype) or isinstance(index.dtype, pd.StringDtype):
        return index.map(neutralise_cell)
    return index


def safe_csv(frame: pd.DataFrame, *, index: bool = False) -> str:
    """``frame`` as CSV text for a download, formulas neutralised."""
    return neutralise_formulas(frame).to_csv(index=index)

"""User-supplied text on its way into Streamlit markdown: titles, genres, tags, dataset, file and run names, ids.

Streamlit renders markdown in st.markdown, st.caption, st.subheader, st.info/warning/error,
help tooltips and most widget labels (expanders, tabs, buttons, metrics, radio options). A
title from an uploaded file such as ``![x](http://tracker/pixel)`` would be fetched by every
visitor's browser, ``[click](http://…)`` becomes a link, ``$…$`` LaTeX, ``:red[…]`` colour,
``:material/…:`` an icon, ``# …`` a heading. :func:`md_escape` turns all of that back into
the literal characters the person typed.

Two of those are not markdown syntax but rewrites of the parsed *text* (after backslash escapes
are resolved), so a backslash cannot stop them: GitHub-style autolinks of bare ``http://…``,
``www.…`` and ``name@host`` addresses, and Streamlit's ``:material/…:`` icons. For those an
invisible word joiner (U+2060) is put after every colon, after a ``www`` and before an ``@``.
"""

from __future__ import annotations

import html
import re

# CommonMark lets any ASCII punctuation be backslash-escaped; these are the characters that
# start markdown (links, images, emphasis, code, headings, lists, quotes, tables), HTML and
# entities (< > &), LaTeX ($), Streamlit directives (:color[...]) and GFM strikethrough (~).
_SPECIAL = re.compile(r"([\\`*_\[\](){}#+\-.!|<>~$:&])")
# a line break would let the next line start a heading, list, quote or code block
_BREAKS = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")
WORD_JOINER = "\u2060"
_TEXT_REWRITES = re.compile(r"(?<=:)|(?<=www)(?=\.)|(?=@)", re.IGNORECASE)
_ESCAPED = re.compile(r"\\(.)")


def one_line(text) -> str:
    """``text`` (anything; None reads as empty) with line breaks and other control characters as spaces."""
    return "" if text is None else _BREAKS.sub(" ", str(text))


def md_escape(text) -> str:
    """``text`` (anything; None reads as empty) as markdown that shows exactly its characters, on one line."""
    joined = _TEXT_REWRITES.sub(WORD_JOINER, one_line(text))
    return _SPECIAL.sub(r"\\\1", joined)


def md_unescape(markdown: str) -> str:
    """What a reader sees of :func:`md_escape`'s output: the escapes and word joiners taken out again."""
    return _ESCAPED.sub(r"\1", markdown).replace(WORD_JOINER, "")


def html_text(text) -> str:
    """``text`` for HTML written into ``st.markdown(..., unsafe_allow_html=True)``: tags and entities escaped,
    and on one line, since a blank line would end the HTML block and hand the rest to the markdown parser."""
    return html.escape(one_line(text), quote=True)

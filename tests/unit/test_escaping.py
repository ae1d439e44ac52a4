"""User-supplied text cannot inject markdown or HTML into the page, and CSV exports cannot carry live formulas.

The markdown checks parse the escaped text the way CommonMark does (every backslash escapes the
next character), so "no unescaped markdown character is left" is checked on the text itself;
the browser test of the same strings (through Streamlit's own renderer) is in the e2e suite.
"""

from __future__ import annotations

import io
import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from recsys.export import neutralise_cell, neutralise_formulas, safe_csv
from ui.text import WORD_JOINER, html_text, md_escape, md_unescape, one_line

ATTACKS = [
    "![pixel](http://tracker.invalid/p.png)",
    "[click me](http://evil.invalid)",
    "<img src=x onerror=alert(1)> <script>alert(1)</script>",
    "# Heading",
    "**bold** _italic_ ~~strike~~ `code`",
    "$x^2$ and $$\\int$$",
    ":red[coloured] :blue-background[bg] :material/movie: :smile:",
    "www.evil.invalid http://evil.invalid mail@evil.invalid",
    "- item\n\n![nl](http://tracker.invalid/nl.png)",
    "1. first\n> quote\n| a | b |",
    "Tom &amp; Jerry &lt;b&gt;",
    "already \\*escaped\\* \\",
]
MARKDOWN = set("\\`*_[](){}#+-.!|<>~$:&")


def unescaped_specials(text: str) -> list[str]:
    """Markdown characters that are not preceded by an escaping backslash."""
    found, i = [], 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] in MARKDOWN:
            found.append(text[i])
        i += 1
    return found


@pytest.mark.parametrize("attack", ATTACKS)
def test_attacks_come_out_as_their_literal_characters_on_one_line(attack):
    escaped = md_escape(attack)
    assert unescaped_specials(escaped) == []
    assert "\n" not in escaped and "\r" not in escaped
    assert md_unescape(escaped) == one_line(attack)


def test_an_image_link_cannot_form():
    escaped = md_escape("![x](http://tracker.invalid/p.png)")
    assert escaped.startswith("\\!\\[x\\]\\(http\\:")
    assert not re.search(r"(?<!\\)!(?<!\\)\[", escaped)


def test_text_level_rewrites_are_broken_by_word_joiners():
    """GFM autolinks and Streamlit's material icons rewrite the parsed text, where backslashes are gone."""
    plain = md_unescape(md_escape("see http://evil.invalid, www.evil.invalid, a@b.invalid :material/movie:")
                        .replace(WORD_JOINER, "<J>")).replace("\\", "")
    assert "http:<J>//" in plain and "www<J>." in plain and "a<J>@b" in plain and ":<J>material/movie:<J>" in plain
    assert not re.search(r"https?://|www\.|\w@\w|:material/", plain)


def test_ordinary_prose_and_ids_keep_their_text():
    for text in ("Most popular", "0123456789abcdef", "Toy Story (1995)", "user 196", "Sci-Fi|Action", 42, None):
        assert md_unescape(md_escape(text)) == ("" if text is None else str(text))
    assert md_escape("Most popular") == "Most popular"
    assert md_escape(None) == ""


@given(st.text(max_size=200))
def test_any_text_round_trips_and_leaves_no_markdown(text):
    escaped = md_escape(text)
    assert unescaped_specials(escaped) == []
    assert not any(c in escaped for c in "\n\r\x00\u2028\u2029")
    assert md_unescape(escaped) == one_line(text).replace(WORD_JOINER, "")


def test_html_text_escapes_tags_and_stays_on_one_line():
    """Tiles are HTML inside st.markdown(unsafe_allow_html=True): a blank line would end the HTML block."""
    out = html_text('Film"\n\n![x](http://tracker.invalid/p.png) <script>alert(1)</script>')
    assert "\n" not in out and "<" not in out and '"' not in out
    assert "&lt;script&gt;" in out and "&quot;" in out


def test_homepage_tiles_escape_titles_genres_and_reasons():
    from ui.homepage import tile_html

    catalogue = SimpleNamespace(titles=np.array(['Bad\n\n![x](http://t.invalid/p.png) <b onclick="x">'], dtype=object),
                                years=np.array([np.nan]), genres=[("<i>Drama</i>",)], genre_names=["<i>Drama</i>"])
    tile = tile_html(0, "because you watched <img src=x>\n\n# heading", catalogue)
    assert "\n" not in tile
    assert "<b " not in tile and "<img" not in tile and "<i>" not in tile
    assert "&lt;b onclick=&quot;x&quot;&gt;" in tile and "&lt;i&gt;Drama&lt;/i&gt;" in tile


# ---------------------------------------------------------------------------- messages on the page
def test_a_data_error_message_is_shown_escaped():
    from streamlit.testing.v1 import AppTest

    def page():
        from recsys.data.errors import DataError
        from ui.errors import shown_errors

        with shown_errors("Loading"):
            raise DataError("Column '![x](http://tracker.invalid/p.png)' is missing.")

    at = AppTest.from_function(page).run()
    [error] = [e.value for e in at.error]
    assert unescaped_specials(error) == []
    assert md_unescape(error) == "Column '![x](http://tracker.invalid/p.png)' is missing."


def test_a_shared_link_cannot_inject_markdown_into_its_warnings():
    """Everything in a Compare link comes from whoever wrote the link."""
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    app = Path(__file__).resolve().parents[2] / "app.py"
    at = AppTest.from_file(str(app), default_timeout=60)
    at.query_params.update({"runs": "![a](http://tracker.invalid/a.png)",
                            "dataset": "[b](http://evil.invalid)", "seed": "$x$ :red[c]"})
    at.run()
    at.switch_page("app_pages/compare.py").run()
    assert not at.exception, [e.value for e in at.exception]
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 2, warnings
    assert any(md_escape("$x$ :red[c]") in w for w in warnings), warnings
    assert any(md_escape("[b](http://evil.invalid)") in w for w in warnings), warnings
    read = [md_unescape(w) for w in warnings]
    assert "The link's 'seed=$x$ :red[c]' is not an integer; it was ignored." in read
    assert any("'[b](http://evil.invalid)'" in w for w in read), read


# ---------------------------------------------------------------------------- CSV formulas
def test_text_cells_that_spreadsheets_evaluate_get_a_quote():
    for formula in ("=1+1", "+1+1", "-1+1", "@SUM(A1:A9)", "\tx", "\rx", '=HYPERLINK("http://x","y")'):
        assert neutralise_cell(formula) == "'" + formula
    for plain in ("Toy Story", "-1", "+3.5", "-2e3", "", "a=b", 5, -1.5, None):
        assert neutralise_cell(plain) == plain


def test_frames_keep_numbers_as_numbers_and_neutralise_text_headers_and_index():
    frame = pd.DataFrame({"user": ["=cmd|' /C calc'!A0", "196", "-7"], "ndcg@10": [-0.5, 0.25, 1.0],
                          "count": [1, -2, 3], "genre": pd.Categorical(["+x", "Drama", "Drama"])},
                         index=pd.Index(["@a", "b", "c"], name="run"))
    frame = frame.rename(columns={"genre": "=genre"})
    out = neutralise_formulas(frame)
    assert out["user"].tolist() == ["'=cmd|' /C calc'!A0", "196", "-7"]
    assert out["ndcg@10"].tolist() == [-0.5, 0.25, 1.0] and out["ndcg@10"].dtype == np.float64
    assert out["count"].tolist() == [1, -2, 3] and out["count"].dtype == frame["count"].dtype
    assert out["'=genre"].tolist() == ["'+x", "Drama", "Drama"]
    assert out.index.tolist() == ["'@a", "b", "c"]
    assert frame["user"].iloc[0].startswith("=")  # the caller's frame is not changed


def test_safe_csv_reads_back_with_numbers_and_inert_text():
    frame = pd.DataFrame({"run": ["=2+3", "EASE"], "ndcg@10": [-0.125, 0.5]})
    back = pd.read_csv(io.StringIO(safe_csv(frame)))
    assert back["run"].tolist() == ["'=2+3", "EASE"]
    assert back["ndcg@10"].tolist() == [-0.125, 0.5]
    assert not any(line.startswith(("=", "+", "@")) for line in safe_csv(frame).splitlines())


def test_every_csv_download_goes_through_the_neutraliser():
    """CSV downloads in the app are built by recsys.export.safe_csv, never by a bare to_csv."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    for path in [*root.glob("app_pages/*.py"), *root.glob("ui/**/*.py")]:
        assert ".to_csv(" not in path.read_text(), f"{path.name} writes CSV without neutralising formulas"
    metrics = (root / "ui" / "compare" / "metrics.py").read_text()
    assert metrics.count("safe_csv(comparison.table)") == 1 and metrics.count("safe_csv(comparison.per_user)") == 1

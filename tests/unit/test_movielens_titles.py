"""MovieLens files articles at the end of a title ("English Patient, The (1996)"); the loaders move them back."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from recsys.data.loaders import readable_titles


@pytest.mark.parametrize(("raw", "shown"), [
    ("English Patient, The (1996)", "The English Patient (1996)"),
    ("Little Mermaid, The (1989)", "The Little Mermaid (1989)"),
    ("Perfect World, A (1993)", "A Perfect World (1993)"),
    ("Affair to Remember, An (1957)", "An Affair to Remember (1957)"),
    ("Good, the Bad and the Ugly, The (1966)", "The Good, the Bad and the Ugly (1966)"),
    ("City of Lost Children, The (Cité des enfants perdus, La) (1995)",
     "The City of Lost Children (Cité des enfants perdus, La) (1995)"),
    ("Postino, Il (1994)", "Il Postino (1994)"),
    ("Blechtrommel, Die (1979)", "Die Blechtrommel (1979)"),
    ("Année dernière à Marienbad, L' (1961)", "L'Année dernière à Marienbad (1961)"),
    ("Shawshank Redemption, The", "The Shawshank Redemption"),
    # conservative: a comma that is part of the title stays
    ("Paris, Texas (1984)", "Paris, Texas (1984)"),
    ("Sex, Lies, and Videotape (1989)", "Sex, Lies, and Videotape (1989)"),
    ("Brother, A Story", "Brother, A Story"),
    ("Toy Story (1995)", "Toy Story (1995)"),
])
def test_readable_titles_move_a_trailing_article_to_the_front(raw, shown):
    assert readable_titles(pd.Series([raw])).tolist() == [shown]


def test_movielens_loaders_show_titles_the_way_people_say_them(ml100k, ml_latest_small):
    for ds in (ml100k, ml_latest_small):
        titles = set(ds.item_titles())
        assert not [t for t in titles if re.search(r", (The|A|An)( \(\d{4}\))?$", t)]
    assert "The English Patient (1996)" in set(ml100k.item_titles())
    # the year still comes from the title's end
    code = int(list(ml100k.item_titles()).index("The English Patient (1996)"))
    assert ml100k.items["year"].iloc[code] == 1996

"""A new visitor on real MovieLens-100K: five titles of one genre give a page dominated by that genre.

Runs every registered model that can fold in a new person (``score_history``), except:

- torch models (``TorchModel`` subclasses such as Mult-VAE, LightGCN, SASRec, GRU4Rec):
  minutes to train on a CPU, too slow for this check;
- ``NON_PERSONALISED``: models whose fold-in ignores the picks by design.

Model-driven rows are "Top picks" and the "Because you picked …" rows (the genre rows
are that genre by construction, so they would prove nothing).
"""

from __future__ import annotations

import numpy as np
import pytest

from recsys.data.split import make_split
from recsys.models import create, registry
from recsys.models.training import TorchModel
from recsys.serving.page import HomepageBuilder, PageSettings

pytestmark = pytest.mark.quality

NON_PERSONALISED = {"pop": "the same most-popular list for everyone"}
# Cheaper settings where the defaults are slow; quality stays far above what the check needs.
FAST_PARAMS = {"ials": {"iterations": 5}}
MODEL_ROWS = ("top_picks", "because")


def fold_in_models() -> list[str]:
    keys = []
    for key, cls in sorted(registry.items()):
        if not callable(getattr(cls, "score_history", None)) or key in NON_PERSONALISED:
            continue
        if issubclass(cls, TorchModel):
            continue
        keys.append(key)
    return keys


@pytest.fixture(scope="module")
def train(ml100k):
    return make_split(ml100k, "random", test_fraction=0.2, seed=42).train


def single_genre_picks(train, genre: str, n: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """The n most popular titles whose only genre is ``genre``, and the genre's membership mask."""
    matrix, names = train.genre_matrix
    member = matrix[:, names.index(genre)].toarray().ravel() > 0
    only = member & (np.asarray(matrix.sum(axis=1)).ravel() == 1)
    order = np.lexsort((np.arange(train.n_items), -train.item_popularity))
    return order[only[order]][:n], member


def genre_shares(train, items: np.ndarray) -> np.ndarray:
    matrix, _ = train.genre_matrix
    return np.asarray(matrix[items].mean(axis=0)).ravel()


def test_the_allowlist_leaves_the_classic_fold_in_models_in():
    assert {"ease", "item_knn", "ials", "pure_svd", "content_tfidf"} <= set(fold_in_models())


@pytest.mark.parametrize("key", fold_in_models())
def test_five_action_titles_give_an_action_page(train, key):
    model = create(key, **FAST_PARAMS.get(key, {})).fit(train)
    picks, action = single_genre_picks(train, "Action")
    assert len(picks) == 5
    page = HomepageBuilder(model, train).for_new_visitor(picks, PageSettings())
    rows = [row for row in page.rows if row.kind in MODEL_ROWS]
    assert any(row.kind == "top_picks" for row in rows)
    shown = np.concatenate([row.items for row in rows])
    share = action[shown].mean()
    shares = genre_shares(train, shown)
    _, names = train.genre_matrix
    assert share > 0.5, f"{key}: only {share:.0%} Action"
    assert names[int(np.argmax(shares))] == "Action", f"{key}: most common genre is {names[int(np.argmax(shares))]}"
    # the visitor's genre also leads the genre rows
    genre_rows = [row for row in page.rows if row.kind == "genre"]
    assert genre_rows and genre_rows[0].title == "Action for you"


@pytest.mark.parametrize("key", fold_in_models())
def test_five_horror_titles_put_horror_far_above_its_catalogue_share(train, key):
    """Horror is 5 % of the catalogue; its classics are watched by everyone, so "dominated"
    here means at least five times that share in the model-driven rows."""
    model = create(key, **FAST_PARAMS.get(key, {})).fit(train)
    picks, horror = single_genre_picks(train, "Horror")
    page = HomepageBuilder(model, train).for_new_visitor(picks, PageSettings())
    shown = np.concatenate([row.items for row in page.rows if row.kind in MODEL_ROWS])
    assert horror[shown].mean() >= 5 * horror.mean(), f"{key}: {horror[shown].mean():.0%} Horror"

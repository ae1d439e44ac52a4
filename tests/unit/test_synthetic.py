"""The synthetic catalogue: deterministic, MovieLens-shaped, and with signal for each model family."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.data import DataError, Dataset, stats, synthetic

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"
SMALL = dict(n_users=600, n_items=800, seed=7)


@pytest.fixture(scope="module")
def small():
    return synthetic.simulate(**SMALL)


@pytest.fixture(scope="module")
def default_world():
    """The generator's defaults: exactly what sample_data/ was written from."""
    return synthetic.simulate()


def _codes(world):
    frame = world.interactions
    return frame["user_id"].to_numpy() - 1, frame["item_id"].to_numpy() - 1


def _last_item_split(world):
    """Leave-last-out on the time-sorted log: (train mask, users, previous item, held-out item)."""
    users, items = _codes(world)
    is_last = np.r_[users[1:] != users[:-1], True]
    return ~is_last, users[is_last], items[np.flatnonzero(is_last) - 1], items[is_last]


def _hit_rate(scores, seen, target, k=10):
    """Share of users whose held-out item ranks in the top k of their unseen items."""
    scores = np.where(seen, -np.inf, scores)
    target_score = scores[np.arange(len(target)), target]
    return float(((scores > target_score[:, None]).sum(1) < k).mean())


def _auc(scores, seen, target):
    """Chance that the held-out item outscores a random unseen one (ties count half)."""
    target_score = scores[np.arange(len(target)), target][:, None]
    better = (scores < target_score) + 0.5 * (scores == target_score)
    unseen = ~seen
    unseen[np.arange(len(target)), target] = False
    return float(((better * unseen).sum(1) / unseen.sum(1)).mean())


# ------------------------------------------------------------------ determinism and shape
def test_same_seed_gives_identical_frames_and_another_seed_does_not():
    first = synthetic.generate(n_users=200, n_items=300, seed=3)
    second = synthetic.generate(n_users=200, n_items=300, seed=3)
    other = synthetic.generate(n_users=200, n_items=300, seed=4)
    pd.testing.assert_frame_equal(first[0], second[0])
    pd.testing.assert_frame_equal(first[1], second[1])
    assert not first[0].equals(other[0])
    assert list(first[1]["title"]) != list(other[1]["title"])


def test_counts_ids_ratings_and_times_are_in_range(small):
    frame = small.interactions
    assert list(frame.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert frame["user_id"].nunique() == SMALL["n_users"]
    assert frame["item_id"].between(1, SMALL["n_items"]).all()
    assert not frame.duplicated(["user_id", "item_id"]).any()
    assert frame["rating"].dtype == np.int64 and set(frame["rating"]) == {1, 2, 3, 4, 5}
    assert frame["timestamp"].between(synthetic.LOG_START, synthetic.LOG_END).all()
    # nobody watches a title before it came out
    assert (frame["timestamp"].to_numpy() > small.release_time[frame["item_id"].to_numpy() - 1]).all()
    # sorted by user, then time
    assert (frame.sort_values(["user_id", "timestamp"], kind="stable").index == frame.index).all()


def test_catalogue_has_believable_titles_genres_and_years(default_world):
    items = default_world.items
    counts = items["genres"].map(len)
    assert counts.between(1, 3).all() and set(counts) == {1, 2, 3}
    used = {g for gs in items["genres"] for g in gs}
    assert 15 <= len(used) <= 20 and used <= set(synthetic.GENRES)
    assert items["year"].between(1950, 2025).all()
    assert items["year"].median() >= 2005  # skewed recent, like real catalogues
    assert items["title"].nunique() / len(items) > 0.98
    assert all(re.fullmatch(r"[A-Z][A-Za-z' ]+( [0-9IV]+| \(\d{4}\))?", t) for t in items["title"])


def test_series_are_numbered_released_in_order_and_share_genres(default_world):
    items, sid, part = default_world.items, default_world.series_id, default_world.series_part
    assert 50 <= sid.max() + 1 <= 300
    for s in range(sid.max() + 1):
        members = np.flatnonzero(sid == s)[np.argsort(part[sid == s])]
        titles = items["title"].to_numpy()[members]
        assert all(t.startswith(titles[0]) for t in titles[1:])
        assert titles[1] in (f"{titles[0]} II", f"{titles[0]} 2")
        assert (np.diff(items["year"].to_numpy()[members]) >= 1).all()
        assert len({items["genres"].iloc[m] for m in members}) == 1


# ------------------------------------------------------------------ distributions
def test_popularity_is_power_law_like(default_world):
    popularity = np.bincount(default_world.interactions["item_id"] - 1, minlength=len(default_world.items))
    assert stats.gini(popularity) > 0.4
    assert stats.head_share(popularity, 0.2) > 0.5
    # a long tail, not a cliff: most titles are watched by someone
    assert (popularity > 0).mean() > 0.9


def test_user_activity_is_long_tailed(default_world):
    activity = default_world.interactions.groupby("user_id").size().to_numpy()
    assert activity.min() >= synthetic.Knobs().min_interactions
    assert activity.mean() > 1.2 * np.median(activity)
    assert activity.max() >= 5 * np.median(activity)
    assert (activity >= 200).sum() >= 20  # a few heavy users with hundreds of titles
    assert 100_000 <= activity.sum() <= 200_000


def test_series_parts_are_watched_in_order(small):
    users, items = _codes(small)
    frame = pd.DataFrame({
        "user": users, "series": small.series_id[items], "part": small.series_part[items],
        "time": small.interactions["timestamp"].to_numpy(),
    })
    frame = frame[frame["series"] >= 0]
    first = frame[frame["part"] == 1].set_index(["user", "series"])["time"]
    second = frame[frame["part"] == 2].set_index(["user", "series"])["time"]
    both = pd.concat([first.rename("first"), second.rename("second")], axis=1).dropna()
    assert len(both) >= 200
    assert (both["first"] < both["second"]).mean() > 0.9
    # and a viewer of part 2 has mostly seen part 1 too
    assert len(both) / len(second) > 0.7


def test_ratings_follow_latent_affinity(small):
    users, items = _codes(small)
    affinity = small.affinity(users, items)
    ratings = small.interactions["rating"].to_numpy()
    assert np.corrcoef(affinity, ratings)[0, 1] > 0.4
    quartile = np.digitize(affinity, np.quantile(affinity, [0.25, 0.5, 0.75]))
    means = [ratings[quartile == q].mean() for q in range(4)]
    assert np.all(np.diff(means) > 0.2)
    assert 3.0 < ratings.mean() < 4.0


def test_half_stars_knob_and_unknown_knobs():
    frame, _ = synthetic.generate(n_users=50, n_items=100, seed=1, half_stars=True)
    assert set(frame["rating"] * 2) <= set(range(2, 11)) and (frame["rating"] % 1 == 0.5).any()
    with pytest.raises(DataError, match="Unknown synthetic-data knob"):
        synthetic.generate(n_users=50, n_items=100, bogus=1)
    with pytest.raises(DataError, match="binge_length"):
        synthetic.generate(n_users=50, n_items=100, binge_length=0.5)


# ------------------------------------------------------------------ signal for models
def test_markov_next_item_beats_most_popular_on_each_users_last_item(small):
    users, items = _codes(small)
    train, test_users, previous, target = _last_item_split(small)
    n_items = len(small.items)
    train_users, train_items = users[train], items[train]
    consecutive = train_users[1:] == train_users[:-1]
    transitions = np.zeros((n_items, n_items))
    np.add.at(transitions, (train_items[:-1][consecutive], train_items[1:][consecutive]), 1.0)
    popularity = np.bincount(train_items, minlength=n_items).astype(np.float64)
    seen = np.zeros((SMALL["n_users"], n_items), bool)
    seen[train_users, train_items] = True
    seen = seen[test_users]

    pop_hr = _hit_rate(np.tile(popularity, (len(target), 1)), seen, target)
    # popularity breaks ties (and fills rows of never-followed items)
    markov_hr = _hit_rate(transitions[previous] + 1e-6 * popularity, seen, target)
    assert markov_hr > pop_hr + 0.1 and markov_hr > 2 * pop_hr, (markov_hr, pop_hr)


def test_genre_profile_content_scores_beat_random(small):
    users, items = _codes(small)
    train, test_users, _, target = _last_item_split(small)
    genre = np.array([[g in gs for g in synthetic.GENRES] for gs in small.items["genres"]], dtype=np.float64)
    profile = np.zeros((SMALL["n_users"], len(synthetic.GENRES)))
    np.add.at(profile, users[train], genre[items[train]])
    profile = profile[test_users]
    scores = (profile / np.linalg.norm(profile, axis=1, keepdims=True)) @ (
        genre / np.linalg.norm(genre, axis=1, keepdims=True)).T
    seen = np.zeros((SMALL["n_users"], len(genre)), bool)
    seen[users[train], items[train]] = True
    rng = np.random.default_rng(0)
    content_auc = _auc(scores, seen[test_users], target)
    random_auc = _auc(rng.random(scores.shape), seen[test_users], target)
    assert content_auc > 0.6 and abs(random_auc - 0.5) < 0.05, (content_auc, random_auc)
    assert content_auc > random_auc + 0.1


def test_title_words_reveal_the_main_genre(default_world):
    """Leave-one-out word voting guesses the main genre far better than always saying Drama."""
    stop = {"the", "of", "a", "in", "and", "ii", "iii", "iv", "v", "2", "3", "4", "5"}
    words = [[w for w in re.findall(r"[a-z']+|\d+", t.lower()) if w not in stop] for t in default_world.items["title"]]
    main = np.array([synthetic.GENRES.index(gs[0]) for gs in default_world.items["genres"]])
    vocab = {w: j for j, w in enumerate(sorted({w for ws in words for w in ws}))}
    bag = np.zeros((len(words), len(vocab)))
    for row, ws in enumerate(words):
        bag[row, [vocab[w] for w in ws]] = 1.0
    votes_per_word = bag.T @ np.eye(len(synthetic.GENRES))[main]  # word x genre counts
    votes = bag @ votes_per_word - bag.sum(1, keepdims=True) * np.eye(len(synthetic.GENRES))[main]
    accuracy = (votes.argmax(1) == main).mean()
    majority = np.bincount(main).max() / len(main)
    assert accuracy > 3 * majority, (accuracy, majority)


# ------------------------------------------------------------------ Dataset and committed sample
def test_make_dataset_builds_the_documented_dataset():
    ds = synthetic.make_dataset(n_users=100, n_items=150, seed=5)
    assert isinstance(ds, Dataset)
    assert ds.name == "Sample catalogue (synthetic)" and ds.feedback == "explicit"
    assert ds.n_users == 100 and ds.n_items == 150  # cold titles stay in the catalogue
    assert ds.timestamp is not None and ds.items is not None
    assert all(isinstance(g, tuple) and g for g in ds.item_genres())
    assert ds.genre_matrix[0].shape[1] >= 10


def _card_number(card: str, label: str) -> float:
    match = re.search(rf"^\| {re.escape(label)} \| ([\d,.]+) \|$", card, re.MULTILINE)
    assert match, f"DATA_CARD.md has no row {label!r}"
    return float(match.group(1).replace(",", ""))


def _read_sample():
    ratings = pd.read_csv(SAMPLE / "ratings.csv")
    items = synthetic.items_from_csv_frame(pd.read_csv(SAMPLE / "items.csv"))
    return ratings, items


def test_committed_sample_loads_and_matches_its_data_card():
    ratings, items = _read_sample()
    ds = Dataset.from_frame(
        ratings, user="user_id", item="item_id", rating="rating", timestamp="timestamp",
        items=items, item_key="item_id", name="Sample catalogue (synthetic)",
    )
    card = (SAMPLE / "DATA_CARD.md").read_text(encoding="utf-8")
    assert "synthetic" in card.lower() and "no real" in card.lower()
    assert ds.n_users == _card_number(card, "Users")
    assert ds.n_items == _card_number(card, "Items")
    assert ds.n_interactions == _card_number(card, "Interactions")
    assert (ds.item_popularity > 0).sum() == _card_number(card, "Items with interactions")
    assert stats.gini(ds.item_popularity) == pytest.approx(_card_number(card, "Popularity Gini"), abs=5e-4)
    assert 2000 <= ds.n_users <= 3000 and 1500 <= ds.n_items <= 2500
    assert 100_000 <= ds.n_interactions <= 200_000
    assert sum(p.stat().st_size for p in SAMPLE.iterdir()) <= 5 * 1024 * 1024


def test_committed_sample_is_what_the_generator_writes(default_world):
    """If this fails, the generator changed: run python -m recsys.data.synthetic --out sample_data."""
    ratings, items = _read_sample()
    pd.testing.assert_frame_equal(ratings, default_world.interactions)
    pd.testing.assert_frame_equal(items, default_world.items)


def test_write_sample_and_command_line_write_all_three_files(tmp_path):
    facts = synthetic.main(["--out", str(tmp_path), "--users", "80", "--items", "120", "--seed", "2",
                            "--knob", "binge_length=6"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["DATA_CARD.md", "items.csv", "ratings.csv"]
    card = (tmp_path / "DATA_CARD.md").read_text(encoding="utf-8")
    assert "--users 80 --items 120 --seed 2 --knob binge_length=6" in card
    assert _card_number(card, "Interactions") == facts["interactions"] == len(pd.read_csv(tmp_path / "ratings.csv"))

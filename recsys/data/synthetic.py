"""A seeded, believable movie-like catalogue and interaction log with signal for every model family.

The generator is a small world model, each part there so that some family of models has
something real to find:

* **Catalogue.** Titles from genre-tied word lists ("The Hollow Cellar" is Horror, "Quantum
  Orbit" Sci-Fi), so TF-IDF on titles and genres carries content signal. Some titles are
  series ("Starfall", "Starfall II", ...), released in order a few years apart.
* **Taste.** Users and items live in one latent space built from genre centroids: an item is
  the mean of its genres' centroids plus noise, a user a weighted mix of a few favourite
  genres plus noise. Matrix factorisation, kNN, neural and graph models recover it.
* **Popularity.** A Zipf-like prior per item and a long-tailed (lognormal) number of
  interactions per user, so popularity is a strong baseline and the data looks like
  MovieLens (a few heavy users with hundreds of titles, most with a few dozen).
* **Time.** Each user is active for a span; nothing is watched before its release and newly
  released titles get a boost. Viewing comes in sessions: binges of one genre in rough
  release order, and series watched part after part. A first-order Markov chain therefore
  beats popularity on the last item of each user, which sequential models can exploit.
* **Ratings.** 1-5 from latent affinity plus user and item biases plus noise, so ratings
  genuinely track taste.

Everything is vectorised over the user x item matrix; the only Python loops run once per
catalogue entry (title words) and are cheap. ``python -m recsys.data.synthetic --out
sample_data`` regenerates the committed sample.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data.dataset import Dataset
from recsys.data.errors import DataError

DEFAULT_USERS = 2500
DEFAULT_ITEMS = 2000
DEFAULT_SEED = 42
DATASET_NAME = "Sample catalogue (synthetic)"

# The log covers twenty years, like MovieLens; catalogue years reach further back.
LOG_START = int(pd.Timestamp("2005-01-01", tz="UTC").timestamp())
LOG_END = int(pd.Timestamp("2025-06-30", tz="UTC").timestamp())
FIRST_YEAR, LAST_YEAR = 1950, 2025
DAY = 86_400
YEAR = int(365.25 * DAY)

# Relative frequency of each genre as an item's main genre (dramas and comedies dominate
# real catalogues, westerns and musicals are rare).
GENRE_WEIGHTS = {
    "Action": 9, "Adventure": 6, "Animation": 4, "Comedy": 14, "Crime": 6, "Documentary": 5,
    "Drama": 16, "Family": 4, "Fantasy": 4, "Horror": 6, "Musical": 2, "Mystery": 4,
    "Romance": 7, "Sci-Fi": 5, "Sports": 2, "Thriller": 8, "War": 2, "Western": 2,
}
GENRES = tuple(GENRE_WEIGHTS)

# Genres that tend to appear together; a secondary genre is drawn with these boosted.
COMPANIONS = {
    "Action": ("Adventure", "Thriller", "Sci-Fi", "Crime"),
    "Adventure": ("Action", "Fantasy", "Family"),
    "Animation": ("Family", "Comedy", "Adventure", "Fantasy"),
    "Comedy": ("Romance", "Family", "Drama", "Crime"),
    "Crime": ("Thriller", "Drama", "Mystery"),
    "Documentary": ("War", "Sports", "Musical"),
    "Drama": ("Romance", "War", "Crime", "Sports"),
    "Family": ("Animation", "Comedy", "Adventure"),
    "Fantasy": ("Adventure", "Animation", "Family"),
    "Horror": ("Thriller", "Mystery", "Sci-Fi"),
    "Musical": ("Romance", "Comedy", "Drama"),
    "Mystery": ("Thriller", "Crime", "Horror"),
    "Romance": ("Comedy", "Drama", "Musical"),
    "Sci-Fi": ("Action", "Thriller", "Adventure"),
    "Sports": ("Drama", "Comedy", "Documentary"),
    "Thriller": ("Crime", "Mystery", "Action"),
    "War": ("Drama", "Action", "Documentary"),
    "Western": ("Action", "Adventure", "Drama"),
}

# (adjectives, nouns) per genre: the title words that give content models their signal.
GENRE_WORDS = {
    "Action": (["Rogue", "Lethal", "Iron", "Final", "Relentless", "Steel", "Maximum", "Savage", "Rapid"],
               ["Protocol", "Strike", "Fury", "Vendetta", "Extraction", "Siege", "Target", "Impact", "Chase",
                "Showdown", "Payback", "Force"]),
    "Adventure": (["Lost", "Hidden", "Wild", "Golden", "Forgotten", "Uncharted", "Endless", "Distant"],
                  ["Expedition", "Island", "Treasure", "Voyage", "Jungle", "Quest", "Compass", "Frontier",
                   "Temple", "Summit", "Map"]),
    "Animation": (["Little", "Brave", "Tiny", "Magic", "Curious", "Fluffy", "Bouncy", "Happy"],
                  ["Penguin", "Robot", "Dragon", "Toybox", "Bunny", "Balloon", "Meadow", "Critters", "Rocket",
                   "Owl"]),
    "Comedy": (["Crazy", "Awkward", "Accidental", "Lucky", "Ridiculous", "Perfect", "Bad", "Big"],
               ["Wedding", "Roommates", "Weekend", "Vacation", "Neighbors", "Bachelor", "Party", "Reunion",
                "Intern", "Road Trip"]),
    "Crime": (["Dirty", "Crooked", "Cold", "Blind", "Bloody", "Borrowed", "Stolen"],
              ["Heist", "Racket", "Alibi", "Syndicate", "Witness", "Getaway", "Confession", "Verdict",
               "Informant", "Streets", "Money"]),
    "Documentary": (["Untold", "True", "Inside", "Vanishing", "Deep", "Living", "Wild"],
                    ["Story", "Planet", "Oceans", "Earth", "Truth", "Journey", "Machine", "Portrait",
                     "Archive", "Voices", "Climate"]),
    "Drama": (["Quiet", "Broken", "Beautiful", "Fragile", "Ordinary", "Distant", "Gentle", "Silent"],
              ["Letters", "Harbor", "Promise", "Season", "Garden", "Daughter", "Years", "Winter", "Bridge",
               "Mercy", "Grace", "Homecoming"]),
    "Family": (["Merry", "Big", "Wonderful", "Magic", "Jolly", "Little"],
               ["Puppy", "Holiday", "Treehouse", "Christmas", "Pony", "Backyard", "Family", "Snowman",
                "Grandpa", "Picnic"]),
    "Fantasy": (["Enchanted", "Ancient", "Crystal", "Elven", "Eternal", "Cursed", "Shadow"],
                ["Sword", "Realm", "Crown", "Sorcerer", "Throne", "Prophecy", "Amulet", "Citadel", "Wizard",
                 "Kingdom", "Dragon"]),
    "Horror": (["Hollow", "Dead", "Cursed", "Wicked", "Unholy", "Crimson", "Howling"],
               ["Haunting", "Cellar", "Ritual", "Bones", "Whispers", "Asylum", "Possession", "Graveyard",
                "Hunger", "Nightmare", "Doll", "Exorcism"]),
    "Musical": (["Golden", "Dancing", "Singing", "Swinging", "Velvet", "Sweet"],
                ["Melody", "Rhapsody", "Broadway", "Chorus", "Serenade", "Jukebox", "Harmony", "Ballroom",
                 "Tune", "Stage"]),
    "Mystery": (["Missing", "Secret", "Strange", "Locked", "Hidden", "Vanishing"],
                ["Clue", "Manor", "Riddle", "Key", "Affair", "Disappearance", "Case", "Puzzle", "Cipher",
                 "Inheritance"]),
    "Romance": (["Sweet", "Tender", "Endless", "Forever", "Unexpected", "Summer"],
                ["Kiss", "Love", "Heart", "Honeymoon", "Valentine", "Romance", "Sunset", "Promise",
                 "Sweetheart", "Proposal"]),
    "Sci-Fi": (["Quantum", "Stellar", "Infinite", "Binary", "Lunar", "Synthetic", "Orbital", "Dark"],
               ["Orbit", "Nebula", "Android", "Signal", "Colony", "Starship", "Horizon", "Protocol", "Eclipse",
                "Singularity", "Outpost", "Cosmos"]),
    "Sports": (["Underdog", "Perfect", "Final", "Golden", "Winning"],
               ["Season", "Champion", "Match", "Game", "Pitch", "Ring", "Rookie", "Coach", "Playoffs",
                "Comeback"]),
    "Thriller": (["Deadly", "Silent", "Midnight", "Fatal", "Hidden", "Dark"],
                 ["Stranger", "Trap", "Pursuit", "Obsession", "Conspiracy", "Deception", "Motive", "Hostage",
                  "Code", "Shadow"]),
    "War": (["Fallen", "Brave", "Iron", "Last", "Burning", "Bitter"],
            ["Battalion", "Trenches", "Front", "Battle", "Soldiers", "Command", "Beachhead", "Regiment",
             "Ridge", "Resistance"]),
    "Western": (["Dusty", "Lone", "Lawless", "Outlaw", "Red", "Wild"],
                ["Gunslinger", "Canyon", "Saloon", "Sheriff", "Rider", "Mesa", "Stagecoach", "Bounty",
                 "Trail", "Ranch"]),
}
GENERIC_WORDS = (["Last", "Lost", "Long", "Great", "Midnight", "Second", "First", "Black", "Blue", "Northern"],
                 ["Night", "Day", "Road", "City", "Summer", "World", "Dream", "Time", "Light", "River", "House"])
PLACES = ["Paris", "Tokyo", "Alaska", "Brooklyn", "Havana", "Vienna", "Montana", "Cairo", "Lisbon", "Memphis"]
NAMES = ["Max", "Lucy", "Oscar", "Nora", "Jack", "Ruby", "Felix", "Iris", "Leo", "Mabel", "Otto", "Vera"]

# {A} adjective, {N}/{M} nouns, {P} place, {X} first name; weights favour the classic shapes.
TITLE_TEMPLATES = (
    ("The {A} {N}", 5), ("{A} {N}", 5), ("{N} of the {M}", 2), ("The {N}", 2), ("{N}", 2),
    ("A {N} in {P}", 1), ("{X}'s {N}", 1), ("{A} {N} in {P}", 1), ("{N} and the {M}", 1),
)
ROMAN = ["", "II", "III", "IV", "V"]


@dataclass(frozen=True)
class Knobs:
    """Every tunable of the generator; ``generate(**knobs)`` overrides any of them."""

    n_factors: int = 12  # latent dimensions of taste
    genre_noise: float = 0.6  # how far an item strays from its genres' centroid
    taste_noise: float = 0.5  # how far a user strays from their favourite genres
    taste_strength: float = 2.2  # weight of latent affinity in what people pick
    popularity_exponent: float = 1.0  # Zipf exponent of the popularity prior
    recency_weight: float = 1.0  # boost for titles released around when a user is active
    recency_years: float = 3.0  # how quickly that boost fades after release
    min_interactions: int = 8  # nobody has fewer (a k-core, like MovieLens' 20)
    median_extra: float = 25.0  # median interactions above the minimum
    activity_sigma: float = 1.05  # lognormal spread of activity: the heavy-user tail
    max_interactions: int = 900
    series_fraction: float = 0.07  # share of catalogue entries that start a series
    sequel_pickup: float = 0.8  # chance a viewer of a later part also saw each earlier part
    out_of_order: float = 0.05  # share of series sessions watched in a jumbled order
    binge_length: float = 4.0  # mean titles per same-genre session
    rating_weight: float = 0.85  # how strongly ratings follow latent affinity
    rating_noise: float = 0.65
    half_stars: bool = False  # half stars make ratings.csv larger; whole stars by default

    def __post_init__(self) -> None:
        if self.n_factors < 2:
            raise DataError(f"n_factors must be at least 2; got {self.n_factors}.")
        if self.min_interactions < 2:
            raise DataError(f"min_interactions must be at least 2; got {self.min_interactions}.")
        for name in ("series_fraction", "sequel_pickup", "out_of_order"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise DataError(f"{name} must be between 0 and 1; got {getattr(self, name)}.")
        if self.binge_length < 1:
            raise DataError(f"binge_length must be at least 1; got {self.binge_length}.")


@dataclass(frozen=True)
class SyntheticWorld:
    """The generated log plus the hidden truth behind it (for tests and teaching).

    ``interactions`` has columns user_id, item_id, rating, timestamp (epoch seconds), sorted
    by user then time. ``items`` has item_id, title, genres (tuple), year. Arrays are indexed
    by position: user ``user_id - 1``, item ``item_id - 1``.
    """

    interactions: pd.DataFrame
    items: pd.DataFrame
    user_factors: np.ndarray  # (n_users, n_factors)
    item_factors: np.ndarray  # (n_items, n_factors)
    genre_centroids: np.ndarray  # (n_genres, n_factors)
    series_id: np.ndarray  # (n_items,) -1 for stand-alone titles
    series_part: np.ndarray  # (n_items,) 1-based part number, 1 for stand-alone titles
    release_time: np.ndarray  # (n_items,) epoch seconds
    knobs: Knobs
    # (n_interactions,) in ``interactions`` order: the star rating before noise and rounding, so
    # the best any model can do (the "magic barrier") is known exactly
    rating_signal: np.ndarray | None = None

    def affinity(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Latent affinity of (user, item) position pairs: what drives choice and rating."""
        users, items = np.asarray(users), np.asarray(items)
        return np.einsum("nd,nd->n", self.user_factors[users], self.item_factors[items])


# ---------------------------------------------------------------------------- catalogue
@dataclass(frozen=True)
class _Catalogue:
    titles: list[str]
    genres: list[tuple[str, ...]]
    year: np.ndarray
    release_time: np.ndarray
    series_id: np.ndarray
    series_part: np.ndarray
    log_popularity: np.ndarray
    factors: np.ndarray
    centroids: np.ndarray


def _draw_genres(rng: np.random.Generator, n: int) -> list[tuple[str, ...]]:
    """1-3 genres per title; the main one by catalogue frequency, the others favour companions."""
    weights = np.array([GENRE_WEIGHTS[g] for g in GENRES], dtype=np.float64)
    primary = rng.choice(len(GENRES), size=n, p=weights / weights.sum())
    count = rng.choice([1, 2, 3], size=n, p=[0.4, 0.42, 0.18])
    out = []
    for main, k in zip(primary, count):
        extra_w = weights.copy()
        for companion in COMPANIONS[GENRES[main]]:
            extra_w[GENRES.index(companion)] *= 6.0
        extra_w[main] = 0.0
        others = rng.choice(len(GENRES), size=k - 1, replace=False, p=extra_w / extra_w.sum())
        out.append((GENRES[main],) + tuple(GENRES[j] for j in others))
    return out


def _word(rng: np.random.Generator, genres: tuple[str, ...], part: int) -> str:
    """A title word (part 0 adjective, 1 noun) mostly from the main genre's list."""
    roll = rng.random()
    if roll < 0.72 or (len(genres) == 1 and roll < 0.85):
        pool = GENRE_WORDS[genres[0]][part]
    elif roll < 0.85:
        pool = GENRE_WORDS[genres[1 + int(rng.integers(len(genres) - 1))]][part]
    else:
        pool = GENERIC_WORDS[part]
    return pool[int(rng.integers(len(pool)))]


def _title(rng: np.random.Generator, genres: tuple[str, ...]) -> str:
    weights = np.array([w for _, w in TITLE_TEMPLATES], dtype=np.float64)
    template = TITLE_TEMPLATES[int(rng.choice(len(TITLE_TEMPLATES), p=weights / weights.sum()))][0]
    noun = _word(rng, genres, 1)
    other = _word(rng, genres, 1)
    while other == noun:  # "Crown of the Crown" reads like a bug
        other = _word(rng, genres, 1)
    title = template.format(
        A=_word(rng, genres, 0), N=noun, M=other,
        P=PLACES[int(rng.integers(len(PLACES)))], X=NAMES[int(rng.integers(len(NAMES)))],
    )
    return "An " + title[2:] if title.startswith("A ") and title[2] in "AEIOU" else title


def _unique_titles(rng: np.random.Generator, genres: list[tuple[str, ...]], years: np.ndarray) -> list[str]:
    """One distinct title per franchise; a rare clash is told apart by year, as real remakes are."""
    seen: set[str] = set()
    titles = []
    for g, year in zip(genres, years):
        for _ in range(30):
            title = _title(rng, g)
            if title not in seen:
                break
        else:
            title = f"{title} ({year})"
        seen.add(title)
        titles.append(title)
    return titles


def _franchise_lengths(rng: np.random.Generator, n_items: int, series_fraction: float) -> np.ndarray:
    """Parts per franchise (1 for stand-alone titles), summing exactly to ``n_items``."""
    series_length = rng.choice([2, 3, 4], size=n_items, p=[0.5, 0.35, 0.15])
    lengths = np.where(rng.random(n_items) < series_fraction, series_length, 1)
    cut = int(np.searchsorted(np.cumsum(lengths), n_items))
    lengths = lengths[: cut + 1].copy()
    lengths[-1] -= int(lengths.sum()) - n_items  # trim the last franchise to fit
    return lengths[lengths > 0]


def _release_years(rng: np.random.Generator, lengths: np.ndarray) -> np.ndarray:
    """Per part: first part skewed recent (exponential back from 2025), sequels 1-4 years apart."""
    n_parts = int(lengths.sum())
    franchise = np.repeat(np.arange(len(lengths)), lengths)
    part = np.arange(n_parts) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    gaps = np.where(part > 0, rng.integers(1, 5, size=n_parts), 0)
    offset = np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[np.cumsum(lengths) - lengths], lengths)
    span = offset[np.cumsum(lengths) - 1]  # years from first to last part
    first = LAST_YEAR - np.floor(rng.exponential(14.0, size=len(lengths))).astype(np.int64)
    first = np.clip(first, FIRST_YEAR, LAST_YEAR - span)
    return first[franchise] + offset


def _year_start(years: np.ndarray) -> np.ndarray:
    return (np.asarray(years) - 1970).astype("datetime64[Y]").astype("datetime64[s]").astype(np.int64)


def _sequel_title(base: str, part: int, arabic: bool) -> str:
    if part == 1:
        return base
    return f"{base} {part}" if arabic else f"{base} {ROMAN[part - 1]}"


def _catalogue(rng: np.random.Generator, n_items: int, knobs: Knobs) -> _Catalogue:
    lengths = _franchise_lengths(rng, n_items, knobs.series_fraction)
    n_franchises = len(lengths)
    franchise = np.repeat(np.arange(n_franchises), lengths)
    part = 1 + np.arange(n_items) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    years = _release_years(rng, lengths)

    genres_f = _draw_genres(rng, n_franchises)
    base_titles = _unique_titles(rng, genres_f, years[np.cumsum(lengths) - lengths])
    arabic = rng.random(n_franchises) < 0.4
    titles = [_sequel_title(base_titles[f], int(p), bool(arabic[f])) for f, p in zip(franchise, part)]

    # Latent factors: genre centroid mix + franchise noise (sequels feel alike) + small part noise.
    centroids = rng.normal(size=(len(GENRES), knobs.n_factors))
    membership = _genre_matrix([genres_f[f] for f in range(n_franchises)])
    franchise_mean = (membership / membership.sum(1, keepdims=True)) @ centroids
    franchise_factor = franchise_mean + knobs.genre_noise * rng.normal(size=franchise_mean.shape)
    factors = franchise_factor[franchise] + 0.15 * rng.normal(size=(n_items, knobs.n_factors))

    # Zipf prior over franchises; each sequel draws a smaller audience than the one before.
    rank = rng.permutation(n_franchises) + 1
    log_pop = -knobs.popularity_exponent * np.log(rank)[franchise] - 0.35 * (part - 1)

    series = np.where(lengths > 1, np.cumsum(lengths > 1) - 1, -1)[franchise]
    release = _year_start(years) + rng.integers(0, 365 * DAY, size=n_items)
    return _Catalogue(
        titles=titles, genres=[genres_f[f] for f in franchise], year=years.astype(np.int64),
        release_time=release.astype(np.int64), series_id=series.astype(np.int64),
        series_part=part.astype(np.int64), log_popularity=log_pop, factors=factors, centroids=centroids,
    )


def _genre_matrix(genres: list[tuple[str, ...]]) -> np.ndarray:
    m = np.zeros((len(genres), len(GENRES)))
    for row, gs in enumerate(genres):
        m[row, [GENRES.index(g) for g in gs]] = 1.0
    return m


# ---------------------------------------------------------------------------- users
@dataclass(frozen=True)
class _Users:
    factors: np.ndarray
    target: np.ndarray  # wished-for number of interactions
    start: np.ndarray
    end: np.ndarray
    binge: np.ndarray  # titles per same-genre session


def _users(rng: np.random.Generator, n_users: int, centroids: np.ndarray, knobs: Knobs) -> _Users:
    """Taste from 1-3 favourite genres, lognormal activity and an active span that grows with it."""
    weights = np.array([GENRE_WEIGHTS[g] for g in GENRES], dtype=np.float64)
    # Favourites: pick by adding Gumbel noise to log genre frequency and keeping the top ones,
    # so drama fans outnumber western fans without any per-user Python loop.
    keys = np.log(weights) + rng.gumbel(size=(n_users, len(GENRES)))
    n_fav = rng.choice([1, 2, 3], size=n_users, p=[0.25, 0.45, 0.30])
    rank = np.argsort(np.argsort(-keys, axis=1), axis=1)
    mix = np.where(rank < n_fav[:, None], rng.gamma(2.0, size=keys.shape), 0.0)
    mix /= mix.sum(1, keepdims=True)
    factors = mix @ centroids + knobs.taste_noise * rng.normal(size=(n_users, centroids.shape[1]))

    extra = rng.lognormal(np.log(knobs.median_extra), knobs.activity_sigma, size=n_users)
    target = np.minimum(knobs.min_interactions + np.round(extra), knobs.max_interactions).astype(np.int64)

    # Heavy users stay longer: span ~ lognormal, stretched by the square root of activity.
    days = rng.lognormal(np.log(120.0), 1.1, size=n_users) * np.sqrt(target / np.median(target))
    length = np.clip(days * DAY, 2 * DAY, LOG_END - LOG_START).astype(np.int64)
    start = LOG_START + (rng.beta(1.6, 1.0, size=n_users) * (LOG_END - LOG_START)).astype(np.int64)
    end = np.minimum(start + length, LOG_END)
    start = np.maximum(LOG_START, end - length)
    binge = 1 + rng.poisson(knobs.binge_length - 1, size=n_users)
    return _Users(factors=factors, target=target, start=start, end=end, binge=binge)


# ---------------------------------------------------------------------------- choice
def _standardise(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / (x.std() + 1e-12)


def _choose(rng: np.random.Generator, cat: _Catalogue, users: _Users, affinity_z: np.ndarray, knobs: Knobs):
    """Boolean user x item matrix of what each person watched.

    Sampling without replacement from softmax(taste + popularity + recency) is done for all
    users at once with the Gumbel top-k trick: add Gumbel noise, keep each row's k largest.
    """
    eligible = cat.release_time[None, :] <= users.end[:, None] - DAY
    age_years = ((users.start + users.end)[:, None] / 2 - cat.release_time[None, :]) / YEAR
    recency = knobs.recency_weight * np.exp(-np.clip(age_years, 0, None) / knobs.recency_years)
    logits = knobs.taste_strength * affinity_z + cat.log_popularity[None, :] + recency
    keys = np.where(eligible, logits + rng.gumbel(size=logits.shape), -np.inf)

    n_eligible = eligible.sum(1)
    k = np.minimum(users.target, np.maximum(2, (0.7 * n_eligible).astype(np.int64)))
    threshold = -np.sort(-keys, axis=1)[np.arange(len(k)), k - 1]
    chosen = keys >= threshold[:, None]
    return _pick_up_earlier_parts(rng, cat, chosen & eligible, knobs.sequel_pickup)


def _pick_up_earlier_parts(rng: np.random.Generator, cat: _Catalogue, chosen: np.ndarray, pickup: float):
    """Whoever watched part k usually watched parts 1..k-1 too (they were released earlier)."""
    n_series = int(cat.series_id.max()) + 1
    if n_series == 0:
        return chosen
    max_parts = int(cat.series_part.max())
    parts = np.full((n_series, max_parts), -1, dtype=np.int64)
    in_series = np.flatnonzero(cat.series_id >= 0)
    parts[cat.series_id[in_series], cat.series_part[in_series] - 1] = in_series
    valid = parts >= 0
    watched = chosen[:, np.where(valid, parts, 0)] & valid  # (users, series, parts)
    # a later part watched <=> reverse cumulative OR, shifted one part to the right
    later = np.flip(np.logical_or.accumulate(np.flip(watched, 2), axis=2), 2)
    later = np.concatenate([later[:, :, 1:], np.zeros_like(later[:, :, :1])], axis=2)
    add = later & ~watched & valid & (rng.random(watched.shape) < pickup)
    u, s, p = np.nonzero(add)
    chosen = chosen.copy()
    chosen[u, parts[s, p]] = True
    return chosen


# ---------------------------------------------------------------------------- time
def _run_position(keys: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within each run of equal consecutive values of ``keys``."""
    n = len(keys)
    starts = np.r_[True, keys[1:] != keys[:-1]]
    return np.arange(n) - np.maximum.accumulate(np.where(starts, np.arange(n), 0))


def _timeline(rng: np.random.Generator, cat: _Catalogue, users: _Users, u: np.ndarray, i: np.ndarray,
              knobs: Knobs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sessions, their order and timestamps for the (user, item) pairs; returns (u, i, timestamp).

    A session is either one series (parts in order) or a binge of up to ``binge`` titles of
    one main genre watched in rough release order; each session starts after its newest
    title came out, at a random moment of the user's span.
    """
    n_genres = len(GENRES)
    primary = np.array([GENRES.index(g[0]) for g in cat.genres])
    is_series = cat.series_id[i] >= 0
    group = np.where(is_series, n_genres + cat.series_id[i], primary[i])

    order = np.lexsort((rng.random(len(u)), group, u))  # shuffle inside each (user, group)
    u, i, group, is_series = u[order], i[order], group[order], is_series[order]
    user_group = u.astype(np.int64) * (n_genres + len(cat.series_id)) + group
    chunk = np.where(is_series, 0, _run_position(user_group) // users.binge[u])
    new_session = np.r_[True, (user_group[1:] != user_group[:-1]) | (chunk[1:] != chunk[:-1])]
    session = np.cumsum(new_session) - 1
    n_sessions = int(session[-1]) + 1

    jumbled = (rng.random(n_sessions) < knobs.out_of_order)[session]
    in_order = np.where(is_series, cat.series_part[i].astype(np.float64), cat.year[i] + rng.normal(0, 3, len(i)))
    within = np.where(is_series & jumbled, rng.random(len(i)), in_order)
    order = np.lexsort((within, session))
    u, i, session = u[order], i[order], session[order]

    starts = np.flatnonzero(np.r_[True, session[1:] != session[:-1]])
    size = np.diff(np.r_[starts, len(i)])
    newest = np.maximum.reduceat(cat.release_time[i], starts)
    su = u[starts]
    gaps = np.clip(rng.normal(2 * 3600, 1200, len(i)), 3600, None)  # a film and a break
    earliest = np.maximum(users.start[su], newest + DAY)
    latest = np.maximum(users.end[su] - size * 2 * 3600, earliest)
    begin = earliest + rng.random(n_sessions) * (latest - earliest)
    elapsed = np.cumsum(gaps)
    offset = elapsed - elapsed[np.repeat(starts, size)]
    timestamp = (np.repeat(begin, size) + offset).astype(np.int64)
    return u, i, timestamp


# ---------------------------------------------------------------------------- ratings
def _ratings(rng: np.random.Generator, cat: _Catalogue, n_users: int, u: np.ndarray, i: np.ndarray,
             affinity_z: np.ndarray, knobs: Knobs) -> tuple[np.ndarray, np.ndarray]:
    """1-5 stars: affinity + generous/harsh user + acclaimed/panned title + noise, rounded.

    Also returns the noiseless signal behind each rating (what the stars would be without noise).
    """
    user_bias = rng.normal(0, 0.4, n_users)
    item_bias = rng.normal(0, 0.3, len(cat.titles)) + 0.1 * _standardise(cat.log_popularity)
    signal = 2.25 + user_bias[u] + item_bias[i] + knobs.rating_weight * affinity_z[u, i]
    raw = signal + knobs.rating_noise * rng.normal(size=len(u))
    step = 0.5 if knobs.half_stars else 1.0
    return np.clip(np.round(raw / step) * step, 1.0, 5.0), signal


# ---------------------------------------------------------------------------- public API
def _knobs(overrides: dict) -> Knobs:
    names = {f.name for f in dataclasses.fields(Knobs)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise DataError(f"Unknown synthetic-data knob(s) {unknown}; the knobs are {sorted(names)}.")
    return Knobs(**overrides)


def simulate(n_users: int = DEFAULT_USERS, n_items: int = DEFAULT_ITEMS, seed: int = DEFAULT_SEED,
             **knobs) -> SyntheticWorld:
    """Generate the log and keep the hidden truth (latent factors, series) alongside it."""
    if n_users < 2 or n_items < 10:
        raise DataError(f"Need at least 2 users and 10 items; got {n_users} users and {n_items} items.")
    config = _knobs(knobs)
    # one independent stream per stage, so changing one stage's knobs leaves the others alone
    rng_items, rng_users, rng_choice, rng_time, rng_rating = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5)
    )
    cat = _catalogue(rng_items, n_items, config)
    users = _users(rng_users, n_users, cat.centroids, config)
    affinity_z = _standardise(users.factors @ cat.factors.T)
    chosen = _choose(rng_choice, cat, users, affinity_z, config)
    u, i = np.nonzero(chosen)
    u, i, timestamp = _timeline(rng_time, cat, users, u, i, config)
    rating, signal = _ratings(rng_rating, cat, n_users, u, i, affinity_z, config)

    order = np.lexsort((i, timestamp, u))
    interactions = pd.DataFrame({
        "user_id": u[order].astype(np.int64) + 1,
        "item_id": i[order].astype(np.int64) + 1,
        "rating": rating[order].astype(np.float64 if config.half_stars else np.int64),
        "timestamp": timestamp[order],
    })
    items = pd.DataFrame({
        "item_id": np.arange(1, n_items + 1, dtype=np.int64),
        "title": cat.titles,
        "genres": pd.Series(cat.genres, dtype=object),
        "year": cat.year,
    })
    return SyntheticWorld(
        interactions=interactions, items=items, user_factors=users.factors, item_factors=cat.factors,
        genre_centroids=cat.centroids, series_id=cat.series_id, series_part=cat.series_part,
        release_time=cat.release_time, knobs=config, rating_signal=signal[order],
    )


def generate(n_users: int = DEFAULT_USERS, n_items: int = DEFAULT_ITEMS, seed: int = DEFAULT_SEED,
             **knobs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(interactions, items)`` frames; the same arguments always give the same frames."""
    world = simulate(n_users, n_items, seed, **knobs)
    return world.interactions, world.items


def to_dataset(interactions: pd.DataFrame, items: pd.DataFrame, name: str = DATASET_NAME) -> Dataset:
    """The generated (or re-read) frames as a Dataset; ``items.genres`` must hold tuples."""
    return Dataset.from_frame(
        interactions, user="user_id", item="item_id", rating="rating", timestamp="timestamp",
        items=items, item_key="item_id", name=name,
    )


def make_dataset(n_users: int = DEFAULT_USERS, n_items: int = DEFAULT_ITEMS, seed: int = DEFAULT_SEED,
                 **knobs) -> Dataset:
    """A generated Dataset, ready for splitting and training."""
    return to_dataset(*generate(n_users, n_items, seed, **knobs))


# ---------------------------------------------------------------------------- sample files
def items_to_csv_frame(items: pd.DataFrame) -> pd.DataFrame:
    """Genres as MovieLens-style "Action|Sci-Fi" text, the form a CSV can hold."""
    out = items.copy()
    out["genres"] = ["|".join(g) for g in items["genres"]]
    return out


def items_from_csv_frame(items: pd.DataFrame) -> pd.DataFrame:
    """Inverse of :func:`items_to_csv_frame`: "Action|Sci-Fi" back to a tuple."""
    out = items.copy()
    out["genres"] = [tuple(str(g).split("|")) if isinstance(g, str) and g else () for g in items["genres"]]
    return out


def write_sample(folder: str | Path, n_users: int = DEFAULT_USERS, n_items: int = DEFAULT_ITEMS,
                 seed: int = DEFAULT_SEED, **knobs) -> dict:
    """Write ratings.csv, items.csv and DATA_CARD.md into ``folder``; returns the card's numbers."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    world = simulate(n_users, n_items, seed, **knobs)
    world.interactions.to_csv(folder / "ratings.csv", index=False)
    items_to_csv_frame(world.items).to_csv(folder / "items.csv", index=False)
    facts = _sample_facts(world, n_users, n_items, seed, knobs)
    (folder / "DATA_CARD.md").write_text(_data_card(facts), encoding="utf-8")
    return facts


def _sample_facts(world: SyntheticWorld, n_users, n_items, seed, knobs) -> dict:
    from recsys.data import stats

    interactions, items = world.interactions, world.items
    ds = to_dataset(interactions, items)
    activity = ds.user_activity
    popularity = ds.item_popularity
    ratings = interactions["rating"]
    return {
        "command": _command(n_users, n_items, seed, knobs),
        "seed": seed,
        "knobs": dataclasses.asdict(_knobs(knobs)),
        "users": ds.n_users,
        "items": ds.n_items,
        "items_with_interactions": int((popularity > 0).sum()),
        "interactions": ds.n_interactions,
        "density": ds.density,
        "activity_min": int(activity.min()),
        "activity_median": float(np.median(activity)),
        "activity_max": int(activity.max()),
        "gini": stats.gini(popularity),
        "head_share": stats.head_share(popularity, 0.2),
        "rating_mean": float(ratings.mean()),
        "scale": "half stars" if world.knobs.half_stars else "whole stars",
        "rating_counts": {float(k): int(v) for k, v in ratings.value_counts().sort_index().items()},
        "first": pd.Timestamp(int(interactions["timestamp"].min()), unit="s").strftime("%Y-%m-%d"),
        "last": pd.Timestamp(int(interactions["timestamp"].max()), unit="s").strftime("%Y-%m-%d"),
        "year_min": int(items["year"].min()),
        "year_max": int(items["year"].max()),
        "series": int(world.series_id.max()) + 1,
        "series_titles": int((world.series_id >= 0).sum()),
        "genres": len({g for gs in items["genres"] for g in gs}),
    }


def _command(n_users, n_items, seed, knobs) -> str:
    parts = ["python -m recsys.data.synthetic --out sample_data"]
    if (n_users, n_items, seed) != (DEFAULT_USERS, DEFAULT_ITEMS, DEFAULT_SEED):
        parts.append(f"--users {n_users} --items {n_items} --seed {seed}")
    parts += [f"--knob {k}={v}" for k, v in sorted(knobs.items())]
    return " ".join(parts)


def _data_card(f: dict) -> str:
    knob_lines = "\n".join(f"| `{k}` | {v} |" for k, v in f["knobs"].items())
    stars = ", ".join(f"{k:g}: {v:,}" for k, v in f["rating_counts"].items())
    return f"""# Data card: Sample catalogue (synthetic)

**Synthetic data.** Every user, title and rating here was generated by a program; no real
person's behaviour is in it and any resemblance of a title to a real film is chance.

## How it was made

```
{f["command"]}
```

`recsys/data/synthetic.py`, seed **{f["seed"]}**. The same command with the same seed writes
the same files. The generator is a small world model:

- **Catalogue**: {f["items"]:,} titles, {f["genres"]} genres, 1-3 genres per title, release years
  {f["year_min"]}-{f["year_max"]} skewed recent. Title words come from genre-specific word lists
  (content models can read genre from titles). {f["series"]} series of 2-4 parts
  ({f["series_titles"]} titles: "Starfall", "Starfall II", ...) released a few years apart.
- **Taste**: users and titles share a latent space built from genre centroids; each user
  likes 1-3 genres. Choice = softmax(taste + Zipf popularity prior + recency of release),
  sampled without replacement.
- **Activity**: at least {f["activity_min"]} interactions per user, lognormal tail (heavy users).
- **Time**: each user is active over a span; titles are watched only after release, in
  sessions: binges of one genre in rough release order, series part after part.
- **Ratings**: {f["scale"]} 1-5 from latent affinity + user bias + title bias + noise.

Knobs:

| knob | value |
|---|---|
{knob_lines}

## What it contains

| | |
|---|---|
| Users | {f["users"]:,} |
| Items | {f["items"]:,} |
| Items with interactions | {f["items_with_interactions"]:,} |
| Interactions | {f["interactions"]:,} |
| Density | {f["density"]:.4f} |
| Interactions per user (min / median / max) | {f["activity_min"]} / {f["activity_median"]:g} / {f["activity_max"]} |
| Popularity Gini | {f["gini"]:.3f} |
| Share of interactions on the top 20% of items | {f["head_share"]:.3f} |
| Rating scale | 1-5, {f["scale"]} (mean {f["rating_mean"]:.2f}) |
| Ratings by star | {stars} |
| Time range | {f["first"]} to {f["last"]} |

Files:

- `ratings.csv`: `user_id,item_id,rating,timestamp`; integer ids, {f["scale"]}, timestamp
  in epoch seconds (UTC); one row per (user, title), sorted by user then time.
- `items.csv`: `item_id,title,genres,year`; genres joined with `|` as in MovieLens.
  {f["items"] - f["items_with_interactions"]} titles have no interactions, mostly ones released after the log
  ends: cold items that only content models can recommend.

## Intended use

The default dataset of the Recommender Explorer: demos, workshops, tests and teaching.
Every model family has signal to find (popularity, neighbourhoods, content on genres and
titles, latent factors, graphs, sequences); a first-order Markov chain beats popularity on
each user's last title. Numbers measured on it say how models behave on this generator,
not how they would do on a real service: use MovieLens or your own log for that.
"""


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="Regenerate the synthetic sample catalogue.")
    parser.add_argument("--out", default="sample_data", help="folder for ratings.csv, items.csv, DATA_CARD.md")
    parser.add_argument("--users", type=int, default=DEFAULT_USERS)
    parser.add_argument("--items", type=int, default=DEFAULT_ITEMS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--knob", action="append", default=[], metavar="NAME=VALUE",
                        help="override a generator knob, e.g. --knob binge_length=6")
    args = parser.parse_args(argv)
    knobs = dict(_parse_knob(text) for text in args.knob)
    facts = write_sample(args.out, args.users, args.items, args.seed, **knobs)
    print(f"{args.out}: {facts['users']:,} users, {facts['items']:,} items, "
          f"{facts['interactions']:,} interactions, popularity Gini {facts['gini']:.3f}")
    return facts


def _parse_knob(text: str) -> tuple[str, object]:
    name, sep, value = text.partition("=")
    field_types = {f.name: f.type for f in dataclasses.fields(Knobs)}
    if not sep or name not in field_types:
        raise DataError(f"--knob wants NAME=VALUE with NAME among {sorted(field_types)}; got {text!r}.")
    kind = field_types[name]
    if kind == "bool":
        return name, value.strip().lower() in ("1", "true", "yes")
    return name, int(value) if kind == "int" else float(value)


if __name__ == "__main__":
    main()

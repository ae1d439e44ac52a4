"""Content-based recommendation: TF-IDF over item metadata, user profiles from liked items."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recsys.models.base import Recommender, param
from recsys.models.registry import register

_WORD = re.compile(r"[a-z][a-z0-9']+")
# Title words that say nothing about content.
STOPWORDS = frozenset(
    "the a an of and in on to for with at by from is it its his her my your our their me you "
    "i ii iii iv part la le les el de der die das".split()
)


def _title_tokens(title: str) -> list[str]:
    title = re.sub(r"\(\d{4}\)", " ", str(title).lower())  # the year is a field, not a word
    return [f"w:{w}" for w in _WORD.findall(title) if w not in STOPWORDS]


def item_tokens(items, use_genres: bool, use_tags: bool, use_title: bool) -> list[list[str]]:
    """One token list per item: prefixed so a genre and a title word never collide."""
    n = len(items)
    tokens: list[list[str]] = [[] for _ in range(n)]
    if use_genres and "genres" in items:
        for toks, genres in zip(tokens, items["genres"]):
            toks.extend(f"g:{g.lower()}" for g in genres)
    if use_tags and "tags" in items:
        for toks, tags in zip(tokens, items["tags"].fillna("")):
            toks.extend(f"t:{w}" for w in _WORD.findall(str(tags).lower()))
    if use_title and "title" in items:
        for toks, title in zip(tokens, items["title"]):
            toks.extend(_title_tokens(title))
    return tokens


def tfidf_matrix(tokens: list[list[str]], min_df: int = 1) -> tuple[sp.csr_matrix, list[str]]:
    """L2-normalised TF-IDF (smooth idf, sublinear tf) of token lists; returns matrix and vocabulary.

    scikit-learn's vectorizer does the counting and weighting; our own tokenizer stays in
    front of it (``analyzer`` takes the prepared lists) because the prefixes keep a genre and
    a title word apart and the year is dropped before any word is read.
    """
    # imported here: scikit-learn takes ~0.9 s to import and the registry imports every model module
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(analyzer=_prepared, min_df=min_df, sublinear_tf=True, smooth_idf=True,
                                 norm="l2", dtype=np.float32)
    try:
        features = vectorizer.fit_transform(tokens)
    except ValueError:  # no token reaches min_df (or no metadata at all): every item is featureless
        return sp.csr_matrix((len(tokens), 0), dtype=np.float32), []
    return sp.csr_matrix(features, dtype=np.float32), vectorizer.get_feature_names_out().tolist()


def _prepared(tokens: list[str]) -> list[str]:
    return tokens


@register
class ContentTfidf(Recommender):
    key = "content_tfidf"
    label = "Content (TF-IDF)"
    family = "content"
    description = "Describes items by genres, tags and title words; recommends what resembles your likes."
    needs_metadata = True

    @dataclass
    class Params:
        use_genres: bool = param(True, help="Describe items by their genres.")
        use_tags: bool = param(True, help="Describe items by user-supplied tags (when present).")
        use_title: bool = param(True, help="Describe items by the words of their title.")
        min_df: int = param(2, help="Ignore tokens found in fewer items than this.", low=1, high=100)
        like_above_mean: bool = param(True, help="Explicit data: build the profile from items rated "
                                                 "above the user's mean (else from every item).")
        popularity_weight: float = param(0.0, help="Blend in log-popularity to break ties among "
                                                   "equally similar items (0 = pure content).",
                                         low=0.0, high=1.0)

    def _fit(self, train, *, valid, progress):
        p = self.params
        tokens = item_tokens(train.items, p.use_genres, p.use_tags, p.use_title)
        self.features_, self.vocabulary_ = tfidf_matrix(tokens, p.min_df)
        self.likes_ = self._liked(train)
        pop = np.log1p(train.item_popularity.astype(np.float64))
        self.popularity_ = (pop / max(pop.max(), 1e-9)).astype(np.float32)
        progress(1, 1)

    def _liked(self, train) -> sp.csr_matrix:
        """Profile weights per (user, item): deviations above the user's mean, or plain positives."""
        if train.feedback != "explicit" or not self.params.like_above_mean:
            return train.positives
        from recsys.models.similarity import center

        dev = center(train.csr, 1)
        dev.data = np.maximum(dev.data, 0.0) + 1e-3  # keep a trace of every item, weight the loved ones
        return sp.csr_matrix(dev, dtype=np.float32)

    def _profile_scores(self, likes: sp.csr_matrix) -> np.ndarray:
        profiles = likes @ self.features_
        norms = np.sqrt(np.asarray(profiles.multiply(profiles).sum(axis=1)).ravel())
        inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        scores = (sp.diags(inv) @ profiles @ self.features_.T).toarray()
        w = self.params.popularity_weight
        return (1.0 - w) * scores + w * self.popularity_[None, :]

    def _score(self, users):
        return self._profile_scores(self.likes_[users])

    def score_history(self, items) -> np.ndarray:
        row = self._history_row(items)
        return self._profile_scores(row).ravel().astype(np.float32)

    def item_embeddings(self) -> sp.csr_matrix:
        return self.features_

    def similar_items(self, item: int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        sims = (self.features_ @ self.features_[item].T).toarray().ravel()
        sims[item] = -np.inf
        order = np.argsort(-sims, kind="stable")[:k]
        return order, sims[order].astype(np.float32)

    def explain(self, user: int, item: int, n: int = 1) -> list[tuple[int, float]]:
        """The history item(s) most similar in content to ``item``: "because you watched …"."""
        history = self.likes_[user].indices
        if len(history) == 0:
            return []
        sims = (self.features_[history] @ self.features_[item].T).toarray().ravel()
        order = np.argsort(-sims, kind="stable")[:n]
        return [(int(history[j]), float(sims[j])) for j in order]

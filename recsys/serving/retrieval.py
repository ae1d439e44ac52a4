"""Two-stage serving: retrieve candidates by approximate nearest neighbours over item
embeddings, then rank only those candidates with a (heavier) model.

Scoring every item for every request costs O(catalogue); production systems with millions
of items first pull a few hundred candidates from an approximate maximum-inner-product
index (sub-linear), then spend their expensive model on those alone. This module builds
the index (faiss HNSW or IVF when faiss is installed, exact numpy search otherwise),
retrieves and re-ranks, and measures what the shortcut costs (recall against exact top-k)
and saves (per-request latency).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.models.capabilities import example_list, has
from recsys.serving.ranking import top_k
from recsys.serving.timing import latency_summary

METHODS = ("hnsw", "hnsw_l2", "ivf", "exact")
DEFAULT_CANDIDATES = (50, 100, 200, 500, 1000)
# search widths worth comparing per index (None = the index default): HNSW's ef_search
# (nodes kept during the walk), IVF's n_probe (of ~sqrt(items) cells); exact has none
SEARCH_WIDTHS = {"hnsw": (None, 800), "hnsw_l2": (None, 800), "ivf": (8, 32, 128), "exact": (None,)}


def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------------------- embeddings


def has_embeddings(model) -> bool:
    """Can ``model`` drive retrieval: does it expose dense user and item vectors?"""
    return has(model, "user_embeddings", "item_embeddings")


def embedding_pair(model) -> tuple[np.ndarray, np.ndarray]:
    """(user vectors, item vectors) whose inner products rank items as the model's retrieval does.

    Factorization models fold a per-item bias into one more dimension
    (``inner_product_embeddings``), so ``users @ items.T`` equals ``model.score`` exactly. For other models with embeddings (NCF) the inner product is a
    cheap proxy of the model's score, which is exactly the role a retrieval model plays.
    """
    if not has_embeddings(model):
        raise ValueError(f"{model.label} has no user and item embeddings; pick a model that has, such as "
                         f"{example_list('user_embeddings', 'item_embeddings')}, for retrieval.")
    users, items = model.inner_product_embeddings()
    if sp.issparse(users) or sp.issparse(items):
        raise ValueError(f"{model.label} has sparse feature vectors, not dense embeddings; pick a factorization "
                         "or graph model for retrieval.")
    users = np.ascontiguousarray(users, dtype=np.float32)
    items = np.ascontiguousarray(items, dtype=np.float32)
    if users.ndim != 2 or items.ndim != 2 or users.shape[1] != items.shape[1]:
        raise ValueError(f"{model.label}: user vectors {users.shape} and item vectors {items.shape} do not share "
                         "one embedding space, so their inner products mean nothing.")
    return users, items


# ---------------------------------------------------------------------------- the index


@dataclass
class CandidateIndex:
    """Maximum-inner-product search over item vectors.

    ``hnsw``: a faiss HNSW graph (Malkov & Yashunin 2018) searched with the inner-product
    metric; a query walks the graph keeping the ``ef_search`` best nodes seen.
    ``hnsw_l2``: the same graph on the classic MIPS→L2 reduction (Bachrach et al. 2014):
    each item gets one extra coordinate sqrt(M² − ‖y‖²), M the largest item norm, and each
    query a 0, so ‖q − y‖² = ‖q‖² + M² − 2 q·y and the nearest item in L2 is the one with the
    largest inner product. It gives HNSW a true metric, but the extra coordinate dominates
    when norms vary little, and recall at equal ``ef_search`` is then lower (see the tests).
    ``ivf``: faiss inverted lists over k-means cells with the inner-product metric; a query
    visits ``n_probe`` cells.
    ``exact``: brute-force matrix product (also the fallback when faiss is not installed).
    """

    item_vectors: np.ndarray
    method: str = "hnsw"
    hnsw_neighbours: int = 32
    ef_construction: int = 200
    ef_search: int = 128
    n_lists: int | None = None
    n_probe: int = 16
    seed: int = 0

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"index method must be one of {METHODS}, not {self.method!r}")
        self.item_vectors = np.ascontiguousarray(self.item_vectors, dtype=np.float32)
        if self.item_vectors.ndim != 2 or len(self.item_vectors) == 0:
            raise ValueError("the index needs a non-empty (items × dimensions) matrix of item vectors")
        use_faiss = self.method != "exact" and faiss_available()
        self.backend = f"faiss-{self.method}" if use_faiss else "exact"
        start = time.perf_counter()
        self._index = self._build()
        self.build_seconds = time.perf_counter() - start

    @property
    def n_items(self) -> int:
        return len(self.item_vectors)

    def _build(self):
        if self.backend == "exact":
            return None
        import faiss

        vectors = self.item_vectors
        if self.backend == "faiss-hnsw":
            index = faiss.IndexHNSWFlat(vectors.shape[1], self.hnsw_neighbours, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.ef_construction
            index.add(vectors)
            return index
        if self.backend == "faiss-hnsw_l2":
            index = faiss.IndexHNSWFlat(vectors.shape[1] + 1, self.hnsw_neighbours, faiss.METRIC_L2)
            index.hnsw.efConstruction = self.ef_construction
            index.add(np.hstack([vectors, _norm_complement(vectors)[:, None]]))
            return index
        n_lists = self.n_lists or max(1, int(np.sqrt(len(vectors))))
        quantizer = faiss.IndexFlatIP(vectors.shape[1])
        index = faiss.IndexIVFFlat(quantizer, vectors.shape[1], min(n_lists, len(vectors)),
                                   faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = self.seed
        index.train(vectors)
        index.add(vectors)
        index.nprobe = self.n_probe
        self._quantizer = quantizer  # the IVF index points at the quantizer: keep it alive with the index
        return index

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Approximately the ``k`` items with the largest inner product per query, best first.

        Returns (items int64, scores float32), shape (queries, k); missing slots hold -1 / -inf.
        Scores are the exact inner products of the returned items.
        """
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = int(min(max(k, 0), self.n_items))
        if k == 0:
            return np.empty((len(queries), 0), np.int64), np.empty((len(queries), 0), np.float32)
        if self.backend == "exact":
            return top_k(queries @ self.item_vectors.T, k)
        if self.backend.startswith("faiss-hnsw"):
            # the graph walk keeps ef_search nodes; it can return at most that many
            self._index.hnsw.efSearch = max(self.ef_search, k)
        if self.backend == "faiss-ivf":
            self._index.nprobe = self.n_probe
        if self.backend == "faiss-hnsw_l2":
            queries = np.hstack([queries, np.zeros((len(queries), 1), np.float32)])
        _, items = self._index.search(queries, k)
        return self._exact_scores(queries[:, : self.item_vectors.shape[1]], items.astype(np.int64))

    def _exact_scores(self, queries: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Inner products of the returned items, re-sorted best first (``hnsw_l2`` orders by
        distance in the augmented space and faiss breaks ties its own way); -inf where no item
        came back."""
        scores = np.einsum("qd,qkd->qk", queries, self.item_vectors[np.maximum(items, 0)]).astype(np.float32)
        scores[items < 0] = -np.inf
        order = np.lexsort((items, -scores), axis=1)
        return np.take_along_axis(items, order, axis=1), np.take_along_axis(scores, order, axis=1)


def _norm_complement(vectors: np.ndarray) -> np.ndarray:
    """sqrt(M² − ‖y‖²) per row, M the largest norm: the coordinate that turns MIPS into L2 search."""
    norms = np.linalg.norm(vectors.astype(np.float64), axis=1)
    return np.sqrt(np.maximum(norms.max() ** 2 - norms ** 2, 0.0)).astype(np.float32)


def build_index(model, method: str = "hnsw", **options) -> tuple[CandidateIndex, np.ndarray]:
    """An index over ``model``'s item vectors and the matching user (query) vectors."""
    users, items = embedding_pair(model)
    return CandidateIndex(items, method, **options), users


# ---------------------------------------------------------------------------- retrieval


def retrieve(index: CandidateIndex, queries: np.ndarray, n: int, seen: sp.spmatrix | None = None,
             batch_size: int = 256) -> np.ndarray:
    """``n`` candidate items per query, never an item in that row of ``seen``.

    The index knows nothing of what a person has already consumed, so it is asked for
    ``n`` + (the batch's largest history) items and the seen ones are dropped: over-fetching
    instead of filtering inside the graph walk keeps the index shared by every user.
    Rows with fewer than ``n`` unseen items are padded with -1.
    """
    queries = np.atleast_2d(queries)
    seen = None if seen is None else sp.csr_matrix(seen)
    out = np.full((len(queries), n), -1, dtype=np.int64)
    for start in range(0, len(queries), batch_size):
        rows = slice(start, start + batch_size)
        extra = 0 if seen is None else int(np.diff(seen[rows].indptr).max(initial=0))
        items, _ = index.search(queries[rows], n + extra)
        out[rows] = _drop_seen(items, None if seen is None else seen[rows], n)
    return out


def _drop_seen(items: np.ndarray, seen: sp.csr_matrix | None, n: int) -> np.ndarray:
    """The first ``n`` items of each row that are neither -1 nor seen, order kept."""
    keep = items >= 0
    if seen is not None and items.size:
        keep &= ~np.take_along_axis(seen.toarray().astype(bool), np.maximum(items, 0), axis=1)
    order = np.argsort(~keep, axis=1, kind="stable")[:, :n]
    picked = np.take_along_axis(items, order, axis=1)
    picked[~np.take_along_axis(keep, order, axis=1)] = -1
    if picked.shape[1] < n:
        picked = np.hstack([picked, np.full((len(picked), n - picked.shape[1]), -1, np.int64)])
    return picked


def exact_top(queries: np.ndarray, item_vectors: np.ndarray, n: int, seen: sp.spmatrix | None = None) -> np.ndarray:
    """The true top-``n`` unseen items by inner product (the reference retrieval is judged against)."""
    items, _ = top_k(np.atleast_2d(queries) @ np.asarray(item_vectors, np.float32).T, n, exclude=seen)
    return items


def candidate_recall(candidates: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per row: the share of ``truth``'s items (ignoring -1) that appear among ``candidates``."""
    candidates, truth = np.atleast_2d(candidates), np.atleast_2d(truth)
    width = max(int(candidates.max(initial=-1)), int(truth.max(initial=-1))) + 2
    # offset each row into its own id range so one isin call checks every row at once
    offsets = np.arange(len(truth))[:, None] * width
    found = np.isin(truth + 1 + offsets, candidates + 1 + offsets) & (truth >= 0)
    valid = (truth >= 0).sum(axis=1)
    return np.divide(found.sum(axis=1), valid, out=np.ones(len(truth)), where=valid > 0)


# ---------------------------------------------------------------------------- ranking stage


def candidate_scores(ranker, users: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """``ranker``'s scores of each user's candidates, (users, n); -inf where the candidate is -1.

    The model scores only what it is asked (``Recommender.score_candidates``): dot-product
    models one small product, item-similarity models (EASE, kNN) the candidates' columns of
    their weight matrix; that is where two-stage serving saves time. Any other model scores
    its full row and reads the candidates from it, which is correct but saves nothing.
    """
    return ranker.score_candidates(np.asarray(users, dtype=np.int64), candidates)


def rerank(ranker, users: np.ndarray, candidates: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` best candidates per user by ``ranker`` (ties by item code, as everywhere)."""
    # top_k breaks ties by position; sorting each row's candidates makes that the item code
    candidates = np.sort(np.atleast_2d(candidates), axis=1)
    scores = candidate_scores(ranker, users, candidates)
    items, _ = top_k(scores, k)
    picked = np.take_along_axis(candidates, np.maximum(items, 0), axis=1)
    picked[items < 0] = -1
    return picked


def two_stage_recommend(index: CandidateIndex, queries: np.ndarray, ranker, users: np.ndarray, n: int, k: int,
                        seen: sp.spmatrix | None = None) -> np.ndarray:
    """Retrieve ``n`` unseen candidates per user, then keep the ranker's top ``k`` of them."""
    return rerank(ranker, users, retrieve(index, queries, n, seen), k)


# ---------------------------------------------------------------------------- measuring the trade-off


@dataclass
class Tradeoff:
    """What ``serving_tradeoff`` measured: one row per candidate count plus the exact baseline."""

    table: pd.DataFrame
    backend: str
    build_seconds: float
    n_items: int
    recall_users: int
    latency_requests: int
    repeats: int = 1  # rounds of timing; each figure is the median over them


def serving_tradeoff(retriever, ranker=None, *, candidate_counts=DEFAULT_CANDIDATES, k: int = 10,
                     method: str = "hnsw", recall_users: int | None = 500, latency_requests: int = 200,
                     repeats: int = 3, seed: int = 0, index_options: dict | None = None, progress=None) -> Tradeoff:
    """Recall and per-request latency of retrieve-then-rank as the candidate count varies.

    ``retriever``: a fitted model with embeddings (the index); ``ranker``: a fitted model
    re-ranking the candidates (default: the retriever itself, i.e. ANN + exact re-scoring).
    For each candidate count n:

    * ``retrieval_recall``: share of the retriever's exact top-k (by inner product, over all
      unseen items) found among the n candidates;
    * ``recall``: share of the ranker's own full-catalogue top-k that the two-stage top-k keeps;
    * p50 / p99 / mean milliseconds per request (one user at a time, as a server answers them),
      retrieval and ranking included; the ``exact`` row scores the whole catalogue with the ranker.

    Timing is noisy: p99 of 200 requests is the second-slowest one, so one pause of the machine
    (another process, the garbage collector) moves it several-fold. The requests are therefore
    timed ``repeats`` times, every setting once per round (a burst of load hits all settings
    alike); each figure is the median over the rounds, and ``p99_low_ms`` / ``p99_high_ms`` are
    the lowest and highest round's p99, the spread the page reports beside it.

    Users are a seeded sample (``recall_users`` for recall, None = everyone; ``latency_requests``
    for timing).
    """
    ranker = ranker or retriever
    train = retriever.trained_on
    if ranker.trained_on.n_items != train.n_items or ranker.trained_on.n_users != train.n_users:
        raise ValueError("The retrieval and ranking models were trained on different data; train both on the "
                         "same dataset and split.")
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1; got {repeats}.")
    index, queries = build_index(retriever, method, seed=seed, **(index_options or {}))
    counts = sorted({int(min(c, train.n_items)) for c in candidate_counts if c >= k})
    if not counts:
        raise ValueError(f"Candidate counts must be at least k = {k}; got {list(candidate_counts)}.")
    rng = np.random.default_rng(seed)
    recall_sample = _sample_users(rng, train, recall_users)
    timing_sample = _sample_users(rng, train, latency_requests)
    seen = train.seen

    retriever_truth = exact_top(queries[recall_sample], index.item_vectors, k, seen[recall_sample])
    ranker_truth, _ = top_k(ranker.score(recall_sample), k, exclude=seen[recall_sample])
    rows = []
    requests = {}
    for n in counts:
        candidates = retrieve(index, queries[recall_sample], n, seen[recall_sample])
        final = rerank(ranker, recall_sample, candidates, k)
        rows.append({"stage": "two-stage", "candidates": n,
                     "retrieval_recall": float(candidate_recall(candidates, retriever_truth).mean()),
                     "recall": float(candidate_recall(final, ranker_truth).mean())})
        requests[n] = lambda u, n=n: _one_two_stage_request(index, queries, ranker, seen, u, n, k)
    rows.append({"stage": "exact", "candidates": train.n_items, "retrieval_recall": 1.0, "recall": 1.0})
    requests["exact"] = lambda u: _one_exact_request(ranker, seen, u, k)
    rounds = {setting: [] for setting in requests}
    steps, step = repeats * len(requests), 0
    for _ in range(repeats):
        for setting, request in requests.items():
            rounds[setting].append(_time_requests(request, timing_sample))
            step += 1
            if progress:
                progress(step, steps)
    for row, setting in zip(rows, requests):
        row.update(_median_of_rounds(rounds[setting]))
    return Tradeoff(pd.DataFrame(rows), index.backend, index.build_seconds, train.n_items,
                    len(recall_sample), len(timing_sample), repeats)


def _median_of_rounds(rounds: list[dict]) -> dict:
    """Each timing figure as the median over the rounds, plus the lowest and highest round's p99."""
    p99 = [r["p99_ms"] for r in rounds]
    return {**{name: float(np.median([r[name] for r in rounds])) for name in ("p50_ms", "p99_ms", "mean_ms")},
            "p99_low_ms": float(min(p99)), "p99_high_ms": float(max(p99))}


def _sample_users(rng: np.random.Generator, train, n: int | None) -> np.ndarray:
    """Users with at least one training interaction: all of them, or a seeded sample of ``n``."""
    users = np.flatnonzero(train.user_activity > 0)
    if n is not None and n < len(users):
        users = np.sort(rng.choice(users, n, replace=False))
    return users


def _one_two_stage_request(index, queries, ranker, seen, user: int, n: int, k: int) -> np.ndarray:
    users = np.array([user])
    history = seen[users]
    items, _ = index.search(queries[users], n + history.nnz)
    candidates = _drop_seen(items, history, n)
    return rerank(ranker, users, candidates, k)


def _one_exact_request(ranker, seen, user: int, k: int) -> np.ndarray:
    users = np.array([user])
    return top_k(ranker.score(users), k, exclude=seen[users])[0]


def _time_requests(request, users: np.ndarray, warmup: int = 5) -> dict:
    """Per-request wall time in ms: p50, p99 and mean (after a few warm-up requests)."""
    for user in users[:warmup]:
        request(int(user))
    times = np.empty(len(users))
    for j, user in enumerate(users):
        start = time.perf_counter()
        request(int(user))
        times[j] = (time.perf_counter() - start) * 1000.0
    summary = latency_summary(times)
    return {name: summary[name] for name in ("p50_ms", "p99_ms", "mean_ms")}


def catalogue_scaling(retriever, sizes=(10_000, 100_000), *, n: int = 200, k: int = 10, requests: int = 100,
                      seed: int = 0, noise: float = 0.1, method: str = "hnsw", search_widths=(None,),
                      index_options: dict | None = None) -> pd.DataFrame:
    """Per-request latency of exact scoring vs index retrieval on synthetic catalogues of ``sizes`` items.

    A real catalogue of a few thousand items is too small for an index to pay off, so this
    grows one: items are the retriever's item vectors drawn with replacement plus Gaussian
    noise (``noise`` × each dimension's spread), which keeps the real geometry (norms,
    clusters). Queries are real users' vectors. Each request is exact top-``k`` by inner
    product over everything, or ``n`` candidates from the index re-scored exactly; ``recall``
    is the share of the exact top-k the index path returns. No history is filtered: the
    synthetic items are new to everyone.

    ``search_widths``: how hard the index searches, one row each: HNSW's ``ef_search`` (nodes
    kept during the walk, at least ``n``) or IVF's ``n_probe`` (cells visited); None = the
    index default. Wider search finds more of the true top-k and takes longer.
    """
    users, items = embedding_pair(retriever)
    rng = np.random.default_rng(seed)
    spread = items.std(axis=0, keepdims=True)
    queries = users[rng.choice(len(users), min(requests, len(users)), replace=False)]
    options = {"hnsw_neighbours": 16, "ef_construction": 64, **(index_options or {})}
    rows = []
    for size in sizes:
        catalogue = items[rng.integers(0, len(items), int(size))]
        catalogue = (catalogue + rng.standard_normal(catalogue.shape) * spread * noise).astype(np.float32)
        index = CandidateIndex(catalogue, method, seed=seed, **options)
        truth = exact_top(queries, catalogue, k)
        exact = _time_requests(lambda j, c=catalogue: exact_top(queries[j], c, k), np.arange(len(queries)))
        for width in search_widths:
            used = _set_search_width(index, width, n)
            found = np.vstack([_index_request(index, q, n, k) for q in queries])
            fast = _time_requests(lambda j, ix=index: _index_request(ix, queries[j], n, k), np.arange(len(queries)))
            rows.append({"items": int(size), "backend": index.backend, "search_width": used,
                         "build_s": index.build_seconds, "recall": float(candidate_recall(found, truth).mean()),
                         "exact_p50_ms": exact["p50_ms"], "exact_p99_ms": exact["p99_ms"],
                         "index_p50_ms": fast["p50_ms"], "index_p99_ms": fast["p99_ms"]})
    return pd.DataFrame(rows)


def _set_search_width(index: CandidateIndex, width: int | None, n: int) -> int:
    """Set how wide ``index`` searches (None = its default) and return the width a search of n uses."""
    if index.backend.startswith("faiss-hnsw"):
        index.ef_search = int(width) if width is not None else CandidateIndex.ef_search
        return max(index.ef_search, n)
    if index.backend == "faiss-ivf":
        index.n_probe = int(width) if width is not None else CandidateIndex.n_probe
        return index.n_probe
    return index.n_items  # exact search looks at everything


def _index_request(index: CandidateIndex, query: np.ndarray, n: int, k: int) -> np.ndarray:
    """``n`` candidates from the index, exact inner products, best ``k`` (search already re-scores)."""
    items, _ = index.search(query[None, :], n)
    return items[:, :k]

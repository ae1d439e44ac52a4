"""2-D maps of embeddings, nearest neighbours and what each latent dimension learned."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd

from recsys.data.dataset import Dataset
from recsys.data.errors import DataError
from recsys.models.latent import cosine_neighbours

# t-SNE's cost grows faster than linearly; on this machine 1,000 unit vectors take ~1.5 s
# (500 iterations) and 2,000 take ~4 s, so the map fits the first 1,000 by priority and places
# the rest beside their nearest fitted neighbours.
TSNE_MAX_POINTS = 1_000
TSNE_ITERATIONS = 500


def available_projections() -> list[str]:
    """PCA and t-SNE (scikit-learn is a dependency); UMAP when umap-learn is installed."""
    methods = ["pca", "tsne"]
    if importlib.util.find_spec("umap") is not None:
        methods.append("umap")
    return methods


def pca_2d(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates on the first two principal axes and the share of variance each explains.

    Signs are fixed (largest-magnitude loading positive) so the same embeddings always give
    the same picture rather than a mirror image.
    """
    x = np.asarray(vectors, dtype=np.float64)
    x = x - x.mean(axis=0)
    _, singular, vt = np.linalg.svd(x, full_matrices=False)
    axes = vt[:2]
    signs = np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)])
    axes = axes * signs[:, None]
    coords = x @ axes.T
    if coords.shape[1] < 2:  # a 1-d embedding: put everything on a line
        coords = np.hstack([coords, np.zeros((len(coords), 2 - coords.shape[1]))])
    variance = singular ** 2
    explained = variance[:2] / variance.sum() if variance.sum() > 0 else np.zeros(2)
    return coords, np.pad(explained, (0, 2 - len(explained)))


def project(vectors: np.ndarray, method: str = "pca", seed: int = 42, normalise: bool = True,
            priority: np.ndarray | None = None) -> np.ndarray:
    """(n, 2) coordinates; deterministic for a given seed.

    With ``normalise`` the vectors are scaled to unit length first: the map then shows the
    angles that the neighbour lists (cosine) use, and a few popular items with long vectors
    no longer squash everything else into one corner. ``priority`` (e.g. popularity) picks
    which points t-SNE fits when there are more than ``TSNE_MAX_POINTS``; without it a seeded
    random sample is fitted.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    if len(vectors) < 3:
        raise DataError("A map needs at least three embeddings.")
    if normalise:
        vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    if method == "pca":
        return pca_2d(vectors)[0]
    if method not in available_projections():
        raise DataError(f"Projection {method!r} is not available here; use PCA or t-SNE, or install "
                        "umap-learn for UMAP.")
    if method == "tsne":
        return tsne_2d(vectors, seed, priority)
    import umap

    return umap.UMAP(n_components=2, random_state=seed).fit_transform(vectors)


def tsne_points(n: int, seed: int, priority: np.ndarray | None = None,
                cap: int = TSNE_MAX_POINTS) -> np.ndarray:
    """Which of ``n`` points t-SNE fits: all up to ``cap``, else the ``cap`` highest by
    ``priority`` (ties by position) or a seeded random sample; sorted."""
    if n <= cap:
        return np.arange(n)
    if priority is None:
        return np.sort(np.random.default_rng(seed).choice(n, size=cap, replace=False))
    return np.sort(np.argsort(-np.asarray(priority, dtype=np.float64), kind="stable")[:cap])


def tsne_2d(vectors: np.ndarray, seed: int, priority: np.ndarray | None = None,
            cap: int = TSNE_MAX_POINTS, neighbours: int = 5) -> np.ndarray:
    """t-SNE of at most ``cap`` points; every other point lands at the mean position of its
    ``neighbours`` nearest fitted points (cosine), so the whole catalogue is still on the map."""
    from sklearn.manifold import TSNE

    vectors = np.asarray(vectors, dtype=np.float32)
    fitted = tsne_points(len(vectors), seed, priority, cap)
    perplexity = float(min(30, max(2, (len(fitted) - 1) // 3)))
    coords = np.zeros((len(vectors), 2))
    coords[fitted] = TSNE(n_components=2, perplexity=perplexity, random_state=seed, init="pca",
                          max_iter=TSNE_ITERATIONS).fit_transform(vectors[fitted])
    rest = np.setdiff1d(np.arange(len(vectors)), fitted)
    if len(rest):
        unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        k = min(neighbours, len(fitted))
        for start in range(0, len(rest), 4096):  # bounded memory: 4,096 x cap similarities at a time
            chunk = rest[start:start + 4096]
            sims = unit[chunk] @ unit[fitted].T
            nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            coords[chunk] = coords[fitted][nearest].mean(axis=1)
    return coords


def primary_genre(ds: Dataset) -> np.ndarray:
    """The first listed genre of each item ("(none)" without metadata)."""
    return np.array([g[0] if g else "(none)" for g in ds.item_genres()], dtype=object)


def item_table(ds: Dataset, coords: np.ndarray) -> pd.DataFrame:
    """One row per item: coordinates plus what a tooltip and a colour scale need."""
    popularity = ds.item_popularity
    return pd.DataFrame({
        "item": np.arange(ds.n_items),
        "x": coords[:, 0],
        "y": coords[:, 1],
        "title": ds.item_titles(),
        "genre": primary_genre(ds),
        "genres": [", ".join(g) for g in ds.item_genres()],
        "interactions": popularity,
        "log_popularity": np.log10(popularity + 1),
    })


def user_table(ds: Dataset, coords: np.ndarray, metric: np.ndarray | None = None) -> pd.DataFrame:
    """One row per user: coordinates, activity and (optionally) a per-user metric."""
    out = pd.DataFrame({
        "user": np.arange(ds.n_users),
        "x": coords[:, 0],
        "y": coords[:, 1],
        "user_id": [str(u) for u in ds.user_ids],
        "interactions": ds.user_activity,
        "log_activity": np.log10(ds.user_activity + 1),
    })
    if metric is not None:
        out["metric"] = metric
    return out


def neighbours_table(ds: Dataset, vectors: np.ndarray, item: int, k: int = 10) -> pd.DataFrame:
    """The k items nearest to ``item`` by cosine similarity of their embeddings, with their item codes
    (``item``): two items may share a title, so a page finds them again by code, never by title."""
    items, sims = cosine_neighbours(np.asarray(vectors, dtype=np.float32), int(item), k)
    return pd.DataFrame({"item": items.astype(np.int64), "title": ds.item_titles(items), "similarity": sims,
                         "genres": [", ".join(ds.item_genres()[i]) for i in items]})


def same_items(first, second) -> bool:
    """Whether two neighbour lists name the same items in the same order (a model whose own item-to-item view
    is the cosine of its embeddings repeats the embedding neighbours exactly)."""
    first, second = np.asarray(first), np.asarray(second)
    return first.shape == second.shape and bool(np.array_equal(first, second))


def dimension_extremes(ds: Dataset, vectors: np.ndarray, dim: int, k: int = 8,
                       min_interactions: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Items with the lowest and the highest value on latent dimension ``dim``.

    Items with fewer than ``min_interactions`` are left out: their vectors are mostly the
    random start plus regularisation, and would crowd both ends with noise.
    """
    vectors = np.asarray(vectors)
    if not 0 <= dim < vectors.shape[1]:
        raise DataError(f"Dimension must be in 0..{vectors.shape[1] - 1}; got {dim}.")
    eligible = np.flatnonzero(ds.item_popularity >= min_interactions)
    if len(eligible) == 0:
        eligible = np.arange(ds.n_items)
    values = vectors[eligible, dim]
    order = eligible[np.argsort(values, kind="stable")]

    def table(codes):
        return pd.DataFrame({"title": ds.item_titles(codes), "value": vectors[codes, dim],
                             "genres": [", ".join(ds.item_genres()[i]) for i in codes]})

    return table(order[:k]), table(order[::-1][:k])


def genre_share_by_dimension(ds: Dataset, vectors: np.ndarray, k: int = 50) -> pd.DataFrame:
    """For every dimension, the genre most over-represented among its top-k items (lift over the catalogue)."""
    genres, names = ds.genre_matrix
    if not names:
        return pd.DataFrame(columns=["dimension", "genre", "lift"])
    base = np.asarray(genres.mean(axis=0)).ravel() + 1e-9
    rows = []
    for dim in range(vectors.shape[1]):
        top = np.argsort(-vectors[:, dim], kind="stable")[:k]
        share = np.asarray(genres[top].mean(axis=0)).ravel()
        best = int(np.argmax(share / base))
        rows.append({"dimension": dim, "genre": names[best], "lift": float(share[best] / base[best])})
    return pd.DataFrame(rows)

"""LightGCN against its defining properties, and the inspection backend against brute force."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from recsys.data import Dataset
from recsys.data.errors import DataError
from recsys.inspection import embeddings as emb
from recsys.inspection import graph
from recsys.models import create
from recsys.models.graph import normalised_adjacency


def small_log(seed=0, n_users=40, n_items=30, density=0.2) -> Dataset:
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    mask[np.arange(n_users), rng.integers(0, n_items, n_users)] = True
    u, i = np.nonzero(mask)
    items = pd.DataFrame({"item": np.arange(n_items), "title": [f"t{j}" for j in range(n_items)],
                          "genres": [(("A", "B", "C")[j % 3],) for j in range(n_items)]})
    df = pd.DataFrame({"user": u, "item": i, "rating": 4.0, "ts": np.arange(len(u))})
    return Dataset.from_frame(df, timestamp="ts", items=items)


@pytest.fixture(scope="module")
def log():
    return small_log()


# ---------------------------------------------------------------------------- LightGCN
def test_adjacency_is_symmetric_normalised(log):
    a = normalised_adjacency(log.positives).toarray()
    x = log.positives.toarray()
    d_users, d_items = x.sum(1), x.sum(0)
    expected = x / np.sqrt(np.outer(d_users, d_items))
    np.testing.assert_allclose(a[: log.n_users, log.n_users:], expected, rtol=1e-6)
    np.testing.assert_allclose(a, a.T, rtol=1e-6)
    assert np.all(a[: log.n_users, : log.n_users] == 0)


def test_zero_layers_is_matrix_factorization_scoring(log):
    model = create("lightgcn", layers=0, epochs=2).fit(log)
    ego = model.module_.ego.weight.detach().numpy()
    users, items = ego[: log.n_users], ego[log.n_users:]
    np.testing.assert_allclose(model.score(np.arange(log.n_users)), users @ items.T, rtol=1e-5, atol=1e-6)


def test_layers_average_the_propagated_embeddings(log):
    model = create("lightgcn", layers=2, epochs=2).fit(log)
    a = normalised_adjacency(log.positives).toarray()
    e0 = model.module_.ego.weight.detach().numpy()
    final = (e0 + a @ e0 + a @ a @ e0) / 3
    np.testing.assert_allclose(model.user_factors_, final[: log.n_users], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(model.item_factors_, final[log.n_users:], rtol=1e-4, atol=1e-6)
    users, items = model.layer_embeddings(1)
    np.testing.assert_allclose(items, (a @ e0)[log.n_users:], rtol=1e-4, atol=1e-6)


def test_hand_written_backward_matches_autograd(log):
    model = create("lightgcn", layers=2, epochs=1).fit(log)
    x = torch.randn(log.n_users + log.n_items, 4, requires_grad=True)
    dense = torch.tensor(model.adjacency_.toarray())
    from recsys.models.graph import _SymmetricPropagate

    out = _SymmetricPropagate.apply(model.module_.adjacency, x)
    (out ** 2).sum().backward()
    reference = x.detach().clone().requires_grad_(True)
    ((dense @ reference) ** 2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), reference.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_fold_in_ranks_like_the_trained_user(log):
    model = create("lightgcn", epochs=30).fit(log)
    overlaps = []
    for user in range(0, log.n_users, 4):
        history = log.positives[user].indices
        folded = model.score_history(history)
        folded[history] = -np.inf
        direct = model.score([user])[0]
        direct[history] = -np.inf
        overlaps.append(len(set(np.argsort(-folded)[:5]) & set(np.argsort(-direct)[:5])) / 5)
    assert np.mean(overlaps) >= 0.6, overlaps


# ---------------------------------------------------------------------------- embeddings
def test_pca_matches_numpy_and_is_deterministic():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(50, 6)) * np.array([5, 3, 1, 1, 1, 1])
    coords, explained = emb.pca_2d(vectors)
    centred = vectors - vectors.mean(0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    np.testing.assert_allclose(np.abs(coords), np.abs(centred @ vt[:2].T), rtol=1e-8)
    np.testing.assert_allclose(explained, s[:2] ** 2 / np.sum(s ** 2))
    np.testing.assert_array_equal(emb.project(vectors, "pca", seed=1), emb.project(vectors, "pca", seed=1))
    np.testing.assert_array_equal(emb.pca_2d(vectors)[0], emb.pca_2d(vectors.copy())[0])


def test_projection_refuses_what_is_not_installed():
    with pytest.raises(DataError, match="not available"):
        emb.project(np.eye(5), "no-such-method")


def clustered(n=90, dims=8, clusters=3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dims)) * 4
    labels = np.arange(n) % clusters
    return centres[labels] + rng.normal(size=(n, dims)) * 0.3, labels


def test_tsne_is_always_offered_deterministic_and_keeps_clusters_apart():
    assert emb.available_projections()[:2] == ["pca", "tsne"]
    vectors, labels = clustered()
    coords = emb.project(vectors, "tsne", seed=3)
    assert coords.shape == (90, 2) and np.isfinite(coords).all()
    np.testing.assert_array_equal(coords, emb.project(vectors, "tsne", seed=3))
    # each point's nearest neighbour on the map belongs to its own cluster
    distances = np.linalg.norm(coords[:, None] - coords[None], axis=2) + np.eye(90) * 1e9
    assert np.mean(labels[distances.argmin(axis=1)] == labels) == 1.0


def test_tsne_fits_the_capped_sample_and_places_the_rest_beside_their_neighbours():
    vectors, _ = clustered(n=120)
    priority = np.arange(120)[::-1]  # the first points matter most
    fitted = emb.tsne_points(120, seed=0, priority=priority, cap=50)
    np.testing.assert_array_equal(fitted, np.arange(50))
    random_pick = emb.tsne_points(120, seed=0, cap=50)
    assert len(np.unique(random_pick)) == 50
    np.testing.assert_array_equal(random_pick, emb.tsne_points(120, seed=0, cap=50))
    assert not np.array_equal(random_pick, emb.tsne_points(120, seed=1, cap=50))
    coords = emb.tsne_2d(vectors, seed=0, priority=priority, cap=50, neighbours=4)
    assert coords.shape == (120, 2)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    for point in (50, 77, 119):
        nearest = np.argsort(-(unit[:50] @ unit[point]))[:4]
        np.testing.assert_allclose(coords[point], coords[nearest].mean(axis=0), rtol=1e-6)
    np.testing.assert_array_equal(coords, emb.tsne_2d(vectors, seed=0, priority=priority, cap=50, neighbours=4))


def test_dimension_extremes_are_the_sorted_ends(log):
    vectors = np.random.default_rng(2).normal(size=(log.n_items, 3))
    low, high = emb.dimension_extremes(log, vectors, 1, k=4, min_interactions=0)
    order = np.argsort(vectors[:, 1])
    np.testing.assert_allclose(low["value"], vectors[order[:4], 1])
    np.testing.assert_allclose(high["value"], vectors[order[::-1][:4], 1])


# ---------------------------------------------------------------------------- graph drawing
def test_neighbourhood_edges_are_real_interactions_and_hops_alternate(log):
    nodes, edges = graph.neighbourhood(log, "user", 3, hops=3, per_node=4, seed=1)
    consumed = log.seen.toarray().astype(bool)
    kinds = dict(zip(nodes["node"], nodes["kind"]))
    codes = dict(zip(nodes["node"], nodes["code"]))
    for a, b in edges.itertuples(index=False):
        user, item = (a, b) if kinds[a] == "user" else (b, a)
        assert kinds[user] == "user" and kinds[item] == "item"
        assert consumed[codes[user], codes[item]]
    expected_kind = {0: "user", 1: "item", 2: "user", 3: "item"}
    assert all(expected_kind[h] == k for h, k in zip(nodes["hop"], nodes["kind"]))
    assert nodes.groupby("parent").size().max() <= 4
    again, _ = graph.neighbourhood(log, "user", 3, hops=3, per_node=4, seed=1)
    pd.testing.assert_frame_equal(nodes, again)


def test_radial_layout_puts_each_hop_on_its_ring(log):
    nodes, edges = graph.neighbourhood(log, "item", 0, hops=2, per_node=5)
    placed = graph.radial_layout(nodes)
    np.testing.assert_allclose(np.hypot(placed["x"], placed["y"]), placed["hop"], atol=1e-9)
    segments = graph.edge_segments(placed, edges)
    assert len(segments) == len(edges)


def test_layer_neighbours_has_one_column_per_layer(log):
    model = create("lightgcn", layers=2, epochs=2).fit(log)
    table = graph.layer_neighbours(model, "item", 4, k=5)
    assert list(table.columns) == ["after 0 layers", "after 1 layer", "after 2 layers"]
    assert "t4" not in set(table.to_numpy().ravel())

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
def test_subgraph_edges_are_real_interactions_and_hops_alternate(log):
    sub = graph.subgraph(log, "u3", hops=3, per_node=4, seed=1)
    consumed = log.seen.toarray().astype(bool)
    nodes = {n.id: n for n in sub.nodes}
    assert len(nodes) == len(sub.nodes), "every node drawn once"
    for edge in sub.edges:
        a, b = nodes[edge.source], nodes[edge.target]
        user, item = (a, b) if a.kind == "user" else (b, a)
        assert user.kind == "user" and item.kind == "item"
        assert consumed[user.code, item.code]
    expected_kind = {0: "user", 1: "item", 2: "user", 3: "item"}
    assert all(expected_kind[n.hop] == n.kind for n in sub.nodes)
    children = pd.Series([n.parent for n in sub.nodes if n.parent])
    assert children.value_counts().max() <= 4
    tree = [e for e in sub.edges if e.kind == "tree"]
    assert len(tree) == len(sub.nodes) - 1
    assert {(e.source, e.target) for e in tree} == {(n.parent, n.id) for n in sub.nodes if n.parent}
    assert all(nodes[n.parent].hop == n.hop - 1 for n in sub.nodes if n.parent)


def test_subgraph_sampling_is_deterministic_by_seed(log):
    first = graph.subgraph(log, "i0", hops=3, per_node=3, seed=5)
    assert graph.subgraph(log, "i0", hops=3, per_node=3, seed=5) == first
    others = [graph.subgraph(log, "i0", hops=3, per_node=3, seed=s) for s in range(6, 10)]
    assert any({n.id for n in o.nodes} != {n.id for n in first.nodes} for o in others)


def test_subgraph_caps_the_node_count_across_hops(log):
    full = graph.subgraph(log, "u0", hops=3, per_node=6, max_nodes=1000)
    assert len(full.nodes) == 60  # 1 + 6 items + 29 users + 24 items: the whole reachable graph
    capped = graph.subgraph(log, "u0", hops=3, per_node=6, max_nodes=25)
    assert len(capped.nodes) == 25
    counts = capped.per_hop()
    assert counts[0] == 1 and counts[1] == min(6, log.seen[0].nnz)
    assert sum(counts.values()) == 25
    assert all(n.parent in {m.id for m in capped.nodes} for n in capped.nodes if n.parent)
    assert len([e for e in capped.edges if e.kind == "interaction"]) <= 300
    few_edges = graph.subgraph(log, "u0", hops=3, per_node=6, max_nodes=1000, max_extra_edges=10)
    assert len([e for e in few_edges.edges if e.kind == "interaction"]) == 10


@pytest.mark.parametrize("centre", ["i4", "u7"])
def test_recentring_puts_the_node_in_the_middle_with_its_own_neighbours(log, centre):
    sub = graph.subgraph(log, centre, hops=2, per_node=50)
    kind, code = graph.parse_node(log, centre)
    middle = sub.node(centre)
    assert sub.centre == centre and middle.hop == 0 and (middle.x, middle.y) == (0.0, 0.0)
    assert middle.kind == kind and middle.code == code
    hop1 = sorted(n.code for n in sub.nodes if n.hop == 1)
    row = log.seen[code] if kind == "user" else log.seen.T.tocsr()[code]
    assert hop1 == sorted(row.indices.tolist()), "with a generous fan-out hop 1 is the whole neighbourhood"
    assert middle.degree == len(hop1)


def test_parse_node_refuses_what_is_not_a_node(log):
    assert graph.parse_node(log, "u39") == ("user", 39)
    for bad, message in [("u40", "No user with code 40"), ("x3", "not a graph node"), ("i", "not a graph node"),
                         ("i-1", "not a graph node")]:
        with pytest.raises(DataError, match=message):
            graph.parse_node(log, bad)
    with pytest.raises(DataError, match="1 to 3 hops"):
        graph.subgraph(log, "u1", hops=4)


def test_radial_layout_puts_each_hop_on_a_wider_ring(log):
    sub = graph.subgraph(log, "i0", hops=3, per_node=5)
    radius = {}
    for n in sub.nodes:
        radius.setdefault(n.hop, set()).add(round(float(np.hypot(n.x, n.y)), 6))
    assert all(len(r) == 1 for r in radius.values()), "one radius per hop"
    rings = [radius[h].pop() for h in sorted(radius)]
    assert rings[0] == 0 and all(b - a >= graph.RING_STEP - 1e-9 for a, b in zip(rings, rings[1:]))
    widest = max(sub.per_hop().items(), key=lambda kv: kv[1])
    assert 2 * np.pi * rings[widest[0]] / widest[1] >= graph.NODE_SPACING - 1e-9


def test_labels_are_one_short_line_of_plain_text():
    assert graph.short_label("Toy Story (1995)") == "Toy Story (1995)"
    long = graph.short_label("Dr. Strangelove or:\nHow I Learned to Stop Worrying and Love the Bomb")
    assert len(long) == graph.LABEL_LENGTH and long.endswith("…") and "\n" not in long
    assert graph.short_label("a\tb\x00c") == "a bc"


def test_hover_text_is_one_line_that_cannot_form_a_tag_or_a_url():
    hostile = graph.GraphNode(id="i3", kind="item", code=3, name="javascript:alert(1) <img src=x onerror=go()>",
                              label="", genres=("Drama", "<b>War</b>"), degree=1234, hop=2, parent="u1",
                              highlight=True)
    text = graph.describe(hostile)
    assert text == ("Title · javascript:alert(1) ‹img src=x onerror=go()› · Drama, ‹b›War‹/b› · 1,234 interactions · "
                    "2 hops from the centre · LightGCN: among the nearest items")
    person = graph.GraphNode(id="u0", kind="user", code=0, name="user 7", label="user 7", genres=(), degree=5,
                             hop=0, parent=None)
    assert graph.describe(person) == "User · user 7 · 5 interactions (activity) · the centre"


def test_highlight_marks_drawn_items_and_adds_the_rest_outside(log):
    sub = graph.subgraph(log, "u0", hops=1, per_node=2)
    inside = next(n.code for n in sub.nodes if n.kind == "item")
    outside = next(i for i in range(log.n_items) if graph.node_id("item", i) not in {n.id for n in sub.nodes})
    marked = graph.highlight(log, sub, [inside, outside])
    assert {n.id for n in marked.nodes if n.highlight} == {f"i{inside}", f"i{outside}"}
    added = marked.node(f"i{outside}")
    assert added.hop == -1 and added.degree == log.item_popularity[outside]
    assert np.hypot(added.x, added.y) > max(np.hypot(n.x, n.y) for n in sub.nodes)
    similar = [(e.source, e.target) for e in marked.edges if e.kind == "similar"]
    assert similar == [("u0", f"i{inside}"), ("u0", f"i{outside}")]
    assert len(marked.nodes) == len(sub.nodes) + 1


def test_layer_neighbours_has_one_column_per_layer(log):
    model = create("lightgcn", layers=2, epochs=2).fit(log)
    table = graph.layer_neighbours(model, "item", 4, k=5)
    assert list(table.columns) == ["after 0 layers", "after 1 layer", "after 2 layers"]
    assert "t4" not in set(table.to_numpy().ravel())
    codes = graph.layer_neighbour_codes(model, "user", 2, k=5)
    assert len(codes) == 3 and all(len(c) == 5 for c in codes)
    assert not set(np.concatenate(codes)) & set(log.seen[2].indices), "a user's consumed items are left out"

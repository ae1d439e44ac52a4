"""The user–item graph around one person or title, sampled to a size a person can read."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.data.dataset import Dataset
from recsys.data.errors import DataError
from recsys.serving.ranking import top_k


def node_name(kind: str, code: int) -> str:
    return f"{kind[0]}{code}"


def neighbourhood(ds: Dataset, kind: str, code: int, hops: int = 2, per_node: int = 6,
                  max_nodes: int = 120, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Nodes and edges within ``hops`` of a user or item, breadth first.

    Each node expands to at most ``per_node`` not-yet-seen neighbours, drawn at random
    (seeded) with probability proportional to their degree, so the picture shows the
    well-connected paths a graph model actually propagates along; the whole drawing is
    capped at ``max_nodes``.
    Returns ``nodes`` (node, kind, code, label, degree, hop, genre, parent) and ``edges``
    (source, target).
    """
    if kind not in ("user", "item"):
        raise DataError(f"kind must be 'user' or 'item'; got {kind!r}")
    limit = ds.n_users if kind == "user" else ds.n_items
    if not 0 <= code < limit:
        raise DataError(f"No {kind} with code {code}; this dataset has {limit} {kind}s.")
    if not 1 <= hops <= 3:
        raise DataError("Choose 1 to 3 hops: beyond that the neighbourhood is most of the catalogue.")
    rng = np.random.default_rng(seed)
    x = ds.seen.tocsr()
    xt = x.T.tocsr()
    degree = {"user": np.diff(x.indptr), "item": np.diff(xt.indptr)}
    titles = ds.item_titles()
    genres = ds.item_genres()
    nodes = {node_name(kind, code): _node(kind, code, 0, None, degree, titles, genres, ds)}
    edges = []
    frontier = [(kind, code)]
    for hop in range(1, hops + 1):
        next_frontier = []
        for node_kind, node_code in frontier:
            matrix, other = (x, "item") if node_kind == "user" else (xt, "user")
            neighbours = matrix.indices[matrix.indptr[node_code]:matrix.indptr[node_code + 1]]
            fresh = np.array([n for n in neighbours if node_name(other, n) not in nodes], dtype=np.int64)
            chosen = _sample_by_degree(fresh, degree[other], per_node, rng)
            for n in chosen:
                if len(nodes) >= max_nodes:
                    break
                nodes[node_name(other, n)] = _node(other, int(n), hop, node_name(node_kind, node_code), degree,
                                                   titles, genres, ds)
                next_frontier.append((other, int(n)))
            # edges to neighbours already drawn (chosen now or earlier) keep the picture honest
            for n in neighbours:
                if node_name(other, n) in nodes:
                    edges.append((node_name(node_kind, node_code), node_name(other, int(n))))
        frontier = next_frontier
    edge_frame = pd.DataFrame(sorted({tuple(sorted(e)) for e in edges}), columns=["source", "target"])
    return pd.DataFrame(nodes.values()), edge_frame


def _sample_by_degree(candidates: np.ndarray, degree: np.ndarray, k: int, rng) -> np.ndarray:
    if len(candidates) <= k:
        return candidates
    weights = degree[candidates].astype(np.float64) + 1.0
    return rng.choice(candidates, size=k, replace=False, p=weights / weights.sum())


def _node(kind, code, hop, parent, degree, titles, genres, ds) -> dict:
    if kind == "user":
        label, genre = f"user {ds.user_ids[code]}", "user"
    else:
        label, genre = str(titles[code]), genres[code][0] if genres[code] else "(none)"
    return {"node": node_name(kind, code), "kind": kind, "code": int(code), "label": label,
            "degree": int(degree[kind][code]), "hop": hop, "genre": genre, "parent": parent}


def radial_layout(nodes: pd.DataFrame) -> pd.DataFrame:
    """Centre node in the middle, hop h on a circle of radius h; each ring ordered by its
    parents' angles so that edges between rings cross as little as possible."""
    nodes = nodes.copy()
    angle = {}
    for hop in sorted(nodes["hop"].unique()):
        ring = nodes[nodes["hop"] == hop]
        if hop == 0:
            for node in ring["node"]:
                angle[node] = 0.0
            continue
        parent_angle = ring["parent"].map(angle).to_numpy(dtype=float)
        order = np.lexsort((ring["node"].to_numpy(), parent_angle))
        slots = 2 * np.pi * (np.arange(len(ring)) + 0.5) / len(ring)
        for slot, node in zip(slots, ring["node"].to_numpy()[order]):
            angle[node] = float(slot)
    nodes["angle"] = nodes["node"].map(angle)
    nodes["x"] = nodes["hop"] * np.cos(nodes["angle"])
    nodes["y"] = nodes["hop"] * np.sin(nodes["angle"])
    return nodes


def edge_segments(nodes: pd.DataFrame, edges: pd.DataFrame) -> pd.DataFrame:
    """Edges with both end points' coordinates (for drawing as line segments)."""
    position = nodes.set_index("node")[["x", "y"]]
    out = edges.join(position, on="source").join(position.rename(columns={"x": "x2", "y": "y2"}), on="target")
    return out.dropna()


def layer_neighbours(model, kind: str, code: int, k: int = 8) -> pd.DataFrame:
    """Nearest items of a user or item after 0, 1, …, K LightGCN propagation layers.

    For an item: cosine neighbours among items at that layer; for a user: the items with
    the highest dot product at that layer, excluding what the user already consumed.
    One column per layer, so a person sees propagation pull neighbours together.
    """
    ds = model.trained_on
    titles = ds.item_titles()
    columns = {}
    for layer in range(model.params.layers + 1):
        users, items = model.layer_embeddings(layer)
        if kind == "item":
            unit = items / np.maximum(np.linalg.norm(items, axis=1, keepdims=True), 1e-12)
            scores = (unit @ unit[code])[None, :].astype(np.float32)
            exclude = np.zeros_like(scores, dtype=bool)
            exclude[0, code] = True
        else:
            scores = (items @ users[code])[None, :].astype(np.float32)
            exclude = ds.seen[[code]].toarray().astype(bool)
        chosen, _ = top_k(scores, k, exclude=exclude)
        columns[f"after {layer} layer{'s' if layer != 1 else ''}"] = [titles[i] if i >= 0 else "" for i in chosen[0]]
    return pd.DataFrame(columns)

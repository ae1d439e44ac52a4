"""Graph recommenders: the interaction table as a graph, L layers reaching L hops, the graph's shape kept."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.data.dataset import Dataset
from recsys.lessons.base import Context, Lesson, LessonResult, Setup
from recsys.lessons.factorization import pick_user
from recsys.lessons.sparsity import generated_world
from recsys.models.base import param

HOP_CHOICES = (
    "Only what is 1 hop away: the films they watched",
    "Up to 2 hops: also the people who share a film with them",
    "Up to 3 hops: also the films those people watched",
    "Up to 4 hops: also the people who share a film with those",
    "Every node in the graph",
)
UNREACHED = -1


@dataclass
class HopKnobs:
    user: str = param("", help="External id of the person the signal starts from (empty: median activity).")
    layers: int = param(3, help="Message-passing layers (LightGCN's L).", low=1, high=4)
    users: int = param(300, help="People in the generated world (used when the app has no dataset).",
                       low=100, high=3000)
    items: int = param(200, help="Films in the generated world.", low=50, high=2000)


def bipartite_adjacency(ds: Dataset) -> sp.csr_matrix:
    """The (users + items) square adjacency [[0, R], [Rᵀ, 0]]: people 0..U-1, films U..U+I-1."""
    interactions = ds.seen.astype(np.float64)
    return sp.bmat([[None, interactions], [interactions.T, None]], format="csr")


def normalised(adjacency: sp.csr_matrix) -> sp.csr_matrix:
    """D^-1/2 A D^-1/2, LightGCN's propagation matrix (isolated nodes keep a zero row)."""
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    scale = np.zeros_like(degree)
    scale[degree > 0] = degree[degree > 0] ** -0.5
    return sp.diags(scale) @ adjacency @ sp.diags(scale)


def hop_distances(adjacency: sp.csr_matrix, start: int, max_hops: int) -> np.ndarray:
    """Hops from ``start`` to every node (UNREACHED beyond ``max_hops``), one sparse product per hop."""
    distance = np.full(adjacency.shape[0], UNREACHED, dtype=np.int64)
    distance[start] = 0
    frontier = np.zeros(adjacency.shape[0])
    frontier[start] = 1.0
    for hop in range(1, max_hops + 1):
        touched = (adjacency @ frontier) > 0
        new = touched & (distance == UNREACHED)
        distance[new] = hop
        frontier = new.astype(np.float64)
    return distance


def propagate(propagation: sp.csr_matrix, start: int, layers: int) -> list[np.ndarray]:
    """x_0 = one-hot(start), x_l = Â x_(l-1): the start node's signal after each layer."""
    signal = np.zeros(propagation.shape[0])
    signal[start] = 1.0
    out = [signal]
    for _ in range(layers):
        out.append(propagation @ out[-1])
    return out


def layer_table(ds: Dataset, adjacency: sp.csr_matrix, propagation: sp.csr_matrix, distance: np.ndarray,
                signals: list[np.ndarray]) -> pd.DataFrame:
    """Per layer: the graph's size (what message passing leaves alone) and where the signal is."""
    is_user = np.arange(adjacency.shape[0]) < ds.n_users
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    rows = []
    for layer, signal in enumerate(signals):
        within = (distance >= 0) & (distance <= layer)
        mean_support = np.mean(signals[: layer + 1], axis=0) > 0
        # edges the signal has crossed: those with an end reached before this layer
        # (edges at the reached nodes, minus those counted from both ends)
        earlier = ((distance >= 0) & (distance < layer)).astype(np.float64)
        crossed = int(degree @ earlier - earlier @ (adjacency @ earlier) / 2)
        rows.append({
            "layer": layer,
            "graph nodes": len(signal), "graph edges": propagation.nnz // 2,
            "people within reach": int((within & is_user).sum()), "films within reach": int((within & ~is_user).sum()),
            "edges the signal crossed": crossed,
            "nodes with signal (this layer)": int((signal > 0).sum()),
            "nodes with signal (mean of layers)": int(mean_support.sum()),
            "mean-of-layers support = reach": bool(np.array_equal(mean_support, within)),
        })
    return pd.DataFrame(rows)


def layers_are_hops(knobs: HopKnobs, context: Context) -> LessonResult:
    ds = context.dataset if context.dataset is not None else generated_world(knobs.users, knobs.items, 7)
    user = pick_user(ds, knobs.user)
    adjacency = bipartite_adjacency(ds)
    propagation = normalised(adjacency)
    reach_hops = max(knobs.layers, len(HOP_CHOICES) - 1)
    distance = hop_distances(adjacency, user, reach_hops)
    signals = propagate(propagation, user, knobs.layers)
    table = layer_table(ds, adjacency, propagation, distance, signals)
    support = np.mean(signals, axis=0) > 0
    correct = _which_reach(support, distance)
    last = table.iloc[-1]
    figures = {"user": float(user), "layers": float(knobs.layers), "graph_nodes": float(last["graph nodes"]),
               "graph_edges": float(last["graph edges"]), "signal_nodes": float(support.sum()),
               "reach_people": float(last["people within reach"]), "reach_films": float(last["films within reach"]),
               "watched": float(ds.user_activity[user])}
    explanation = (
        f"User {ds.user_ids[user]} watched {ds.user_activity[user]} films. After {knobs.layers} layer(s) the mean "
        f"of the layers (LightGCN's embedding) holds signal on {support.sum():,} nodes: "
        f"{int(last['people within reach']):,} people and {int(last['films within reach']):,} films, exactly "
        f"those within {knobs.layers} hop(s). Each layer moves signal one edge further, so L layers see L hops; "
        f"the graph itself stays {int(last['graph nodes']):,} nodes and {int(last['graph edges']):,} edges at "
        "every layer: message passing changes what the nodes hold, never the table's shape."
    )
    return LessonResult(figures=figures, correct=correct, explanation=explanation,
                        tables={"Layer by layer": table})


def _which_reach(support: np.ndarray, distance: np.ndarray) -> int:
    """The first choice that describes ``support``: within h hops for h = 1..4, else every node."""
    for hops in range(1, len(HOP_CHOICES)):
        if np.array_equal(support, (distance >= 0) & (distance <= hops)):
            return hops - 1
    return len(HOP_CHOICES) - 1


LESSONS = [
    Lesson(
        key="layers_are_hops",
        chapter="Graph neural networks",
        title="L layers, L hops",
        framing=(
            "Read the interaction table as a graph: people and films are nodes, each interaction an edge. "
            "A graph recommender such as LightGCN passes messages along the edges: each layer, every node "
            "takes the (degree-normalised) sum of its neighbours' vectors. Start a signal at one person and "
            "follow it layer by layer."
        ),
        question="After the chosen number of layers, which nodes hold signal from this person?",
        choices=HOP_CHOICES,
        Knobs=HopKnobs,
        compute=layers_are_hops,
        setup=Setup(runs=(("lightgcn", {}),), page="graph"),
    ),
]

"""The user–item graph around one person or title, sampled to a size a person can read.

UI-free: :func:`subgraph` returns plain dataclasses (nodes with positions, edges with a
kind) that any drawing library can map onto its own node and edge objects.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from recsys.data.dataset import Dataset
from recsys.data.errors import DataError
from recsys.serving.ranking import top_k

LABEL_LENGTH = 24
# Ring spacing in drawing units (about pixels at zoom 1): rings at least this far apart, and
# a ring widens until neighbours on it are at least NODE_SPACING apart.
RING_STEP = 170.0
NODE_SPACING = 40.0


@dataclass(frozen=True)
class GraphNode:
    id: str                      # "u12" for user code 12, "i5" for item code 5
    kind: str                    # "user" | "item"
    code: int
    name: str                    # the full title, or "user <external id>"
    label: str                   # one line of plain text, at most LABEL_LENGTH characters
    genres: tuple[str, ...]
    degree: int                  # interactions of this item or user in the dataset
    hop: int                     # 0 = centre; -1 = drawn only because it is highlighted
    parent: str | None           # the node the sampler reached it from
    x: float = 0.0
    y: float = 0.0
    highlight: bool = False

    @property
    def genre(self) -> str:
        """The colour group: "user" for people, the first genre for titles."""
        return "user" if self.kind == "user" else (self.genres[0] if self.genres else "(none)")


@dataclass(frozen=True)
class GraphEdge:
    source: str
    target: str
    kind: str                    # "tree": the path the sampler walked; "interaction": another
                                 # interaction between drawn nodes; "similar": a highlight link


@dataclass(frozen=True)
class Subgraph:
    centre: str
    hops: int
    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]

    def node(self, node: str) -> GraphNode:
        for candidate in self.nodes:
            if candidate.id == node:
                return candidate
        raise KeyError(node)

    def per_hop(self) -> dict[int, int]:
        """How many nodes each hop shows (highlight-only nodes at hop -1)."""
        hops = pd.Series([n.hop for n in self.nodes])
        return {int(h): int(c) for h, c in hops.value_counts().sort_index().items()}


def node_id(kind: str, code: int) -> str:
    if kind not in ("user", "item"):
        raise DataError(f"kind must be 'user' or 'item'; got {kind!r}")
    return f"{kind[0]}{int(code)}"


def parse_node(ds: Dataset, node: str) -> tuple[str, int]:
    """("user" | "item", code) of a node id such as "u12"; a DataError when it names nothing in ``ds``."""
    node = str(node)
    kind = {"u": "user", "i": "item"}.get(node[:1])
    if kind is None or not node[1:].isdigit():
        raise DataError(f"{node!r} is not a graph node (expected 'u<code>' or 'i<code>').")
    code = int(node[1:])
    limit = ds.n_users if kind == "user" else ds.n_items
    if code >= limit:
        raise DataError(f"No {kind} with code {code}; this dataset has {limit} {kind}s.")
    return kind, code


def display_name(ds: Dataset, node: str) -> str:
    """The full title of an item node, "user <external id>" for a user node."""
    kind, code = parse_node(ds, node)
    return f"user {ds.user_ids[code]}" if kind == "user" else str(ds.item_titles()[code])


def short_label(text: str, length: int = LABEL_LENGTH) -> str:
    """``text`` on one line of plain text, cut to ``length`` characters with an ellipsis."""
    flat = " ".join(str(text).split())
    flat = "".join(ch for ch in flat if ch.isprintable())
    return flat if len(flat) <= length else flat[: length - 1].rstrip() + "…"


def describe(node: GraphNode) -> str:
    """One line of plain text for a hover tooltip: what the node is, its genres, degree and hop.

    Angle brackets become look-alikes (‹ ›): the drawing component copies this text into a DOM
    node through innerHTML, so a title must not be able to form a tag. It opens with a fixed word
    ("Title", "User") so it can never read as a URL scheme either (the component passes the text
    to window.open on a double click; a leading "javascript:" from a title would be run).
    """
    parts = [f"{'User' if node.kind == 'user' else 'Title'} · {short_label(node.name, 120)}"]
    if node.kind == "item":
        parts.append(", ".join(node.genres) or "no genres")
        parts.append(f"{node.degree:,} interactions")
    else:
        parts.append(f"{node.degree:,} interactions (activity)")
    parts.append("the centre" if node.hop == 0 else "outside the sampled neighbourhood" if node.hop < 0
                 else f"{node.hop} hop{'s' if node.hop > 1 else ''} from the centre")
    if node.highlight:
        parts.append("LightGCN: among the nearest items")
    return " · ".join(parts).replace("<", "‹").replace(">", "›")


def subgraph(ds: Dataset, centre: str, hops: int = 2, per_node: int = 6, max_nodes: int = 150,
             seed: int = 0, max_extra_edges: int = 300) -> Subgraph:
    """The nodes within ``hops`` of ``centre`` (a node id), sampled breadth first, laid out in rings.

    Each node expands to at most ``per_node`` not-yet-drawn neighbours, drawn at random (seeded)
    with probability proportional to their degree, so the picture shows the well-connected paths
    a graph model propagates along. When a hop would pass ``max_nodes`` in all, a seeded,
    degree-weighted subset of that hop is kept. Edges: the sampler's tree plus up to
    ``max_extra_edges`` other interactions between drawn nodes (a seeded sample), so a 3-hop
    picture keeps its cycles without turning into a hairball.
    """
    kind, code = parse_node(ds, centre)
    if not 1 <= hops <= 3:
        raise DataError("Choose 1 to 3 hops: beyond that the neighbourhood is most of the catalogue.")
    if max_nodes < 2 or per_node < 1:
        raise DataError("A neighbourhood needs room for the centre and at least one neighbour.")
    rng = np.random.default_rng(seed)
    x = ds.seen.tocsr()
    xt = x.T.tocsr()
    adjacency = {"user": x, "item": xt}
    degree = {"user": np.diff(x.indptr), "item": np.diff(xt.indptr)}
    drawn = {"user": np.zeros(ds.n_users, dtype=bool), "item": np.zeros(ds.n_items, dtype=bool)}
    drawn[kind][code] = True
    layers = [[(kind, code, None)]]
    total = 1
    for _ in range(hops):
        frontier = layers[-1]
        other = "item" if frontier[0][0] == "user" else "user"
        claimed: list[tuple[str, int, str]] = []
        for node_kind, node_code, _parent in frontier:
            matrix = adjacency[node_kind]
            neighbours = matrix.indices[matrix.indptr[node_code]:matrix.indptr[node_code + 1]]
            fresh = np.sort(neighbours[~drawn[other][neighbours]])
            chosen = _sample_by_degree(fresh, degree[other][fresh], per_node, rng)
            drawn[other][chosen] = True
            claimed.extend((other, int(n), node_id(node_kind, node_code)) for n in chosen)
        room = max_nodes - total
        if len(claimed) > room:
            codes = np.array([c for _, c, _ in claimed])
            keep = np.sort(_sample_by_degree(np.arange(len(claimed)), degree[other][codes], room, rng))
            drawn[other][codes] = False
            claimed = [claimed[j] for j in keep]
            drawn[other][[c for _, c, _ in claimed]] = True
        if not claimed:
            break
        layers.append(claimed)
        total += len(claimed)
        if total >= max_nodes:
            break

    titles = ds.item_titles()
    genres = ds.item_genres()
    nodes = []
    for hop, layer in enumerate(layers):
        for node_kind, node_code, parent in layer:
            nodes.append(_make_node(ds, node_kind, node_code, hop, parent, int(degree[node_kind][node_code]),
                                    titles, genres))
    tree = [GraphEdge(n.parent, n.id, "tree") for n in nodes if n.parent is not None]
    extra = _extra_edges(x, drawn, {(e.source, e.target) for e in tree}, max_extra_edges, rng)
    return Subgraph(centre=node_id(kind, code), hops=hops, nodes=tuple(radial_layout(nodes)),
                    edges=tuple(tree + extra))


def _sample_by_degree(candidates: np.ndarray, candidate_degree: np.ndarray, k: int, rng) -> np.ndarray:
    if len(candidates) <= k:
        return candidates
    weights = candidate_degree.astype(np.float64) + 1.0
    return rng.choice(candidates, size=k, replace=False, p=weights / weights.sum())


def _make_node(ds, kind, code, hop, parent, degree, titles, genres) -> GraphNode:
    if kind == "user":
        name, node_genres = f"user {ds.user_ids[code]}", ()
    else:
        name, node_genres = str(titles[code]), tuple(genres[code])
    return GraphNode(id=node_id(kind, code), kind=kind, code=int(code), name=name, label=short_label(name),
                     genres=node_genres, degree=degree, hop=hop, parent=parent)


def _extra_edges(x, drawn, tree: set, limit: int, rng) -> list[GraphEdge]:
    users, items = np.flatnonzero(drawn["user"]), np.flatnonzero(drawn["item"])
    block = x[users][:, items].tocoo()
    pairs = [(f"u{users[r]}", f"i{items[c]}") for r, c in zip(block.row, block.col)]
    pairs = sorted(p for p in pairs if p not in tree and p[::-1] not in tree)
    if len(pairs) > limit:
        pairs = [pairs[j] for j in np.sort(rng.choice(len(pairs), size=limit, replace=False))]
    return [GraphEdge(a, b, "interaction") for a, b in pairs]


def radial_layout(nodes: list[GraphNode]) -> list[GraphNode]:
    """Centre at the origin, hop h on the h-th ring; each ring ordered by its parents' angles so
    that edges between rings cross as little as possible. Highlight-only nodes (hop -1) get a
    ring of their own outside the rest."""
    outer = max(n.hop for n in nodes) + 1
    rings: dict[int, list[GraphNode]] = {}
    for n in nodes:
        rings.setdefault(outer if n.hop < 0 else n.hop, []).append(n)
    angle: dict[str, float] = {}
    position: dict[str, tuple[float, float]] = {}
    radius = 0.0
    for ring in sorted(rings):
        members = rings[ring]
        if ring == 0:
            for n in members:
                angle[n.id], position[n.id] = 0.0, (0.0, 0.0)
            continue
        radius = max(radius + RING_STEP, len(members) * NODE_SPACING / (2 * np.pi))
        order = sorted(members, key=lambda n: (angle.get(n.parent, 0.0), n.id))
        for slot, n in enumerate(order):
            theta = 2 * np.pi * (slot + 0.5) / len(order)
            angle[n.id] = theta
            position[n.id] = (float(radius * np.cos(theta)), float(radius * np.sin(theta)))
    return [replace(n, x=position[n.id][0], y=position[n.id][1]) for n in nodes]


def highlight(ds: Dataset, sub: Subgraph, items) -> Subgraph:
    """``sub`` with ``items`` (codes) marked; those outside the sampled neighbourhood are added on an
    outer ring with a "similar" edge from the centre, so a person sees where they sit in the graph."""
    wanted = [node_id("item", int(i)) for i in items if int(i) >= 0]
    present = {n.id for n in sub.nodes}
    titles, genres = ds.item_titles(), ds.item_genres()
    popularity = ds.item_popularity
    nodes = [replace(n, highlight=n.id in wanted) for n in sub.nodes]
    added = [replace(_make_node(ds, "item", int(w[1:]), -1, sub.centre, int(popularity[int(w[1:])]), titles, genres),
                     highlight=True) for w in wanted if w not in present]
    links = [GraphEdge(sub.centre, w, "similar") for w in wanted if w != sub.centre]
    return Subgraph(centre=sub.centre, hops=sub.hops, nodes=tuple(radial_layout(nodes + added)),
                    edges=sub.edges + tuple(links))


def layer_neighbour_codes(model, kind: str, code: int, k: int = 8) -> list[np.ndarray]:
    """Item codes nearest to a user or item after 0, 1, …, K LightGCN propagation layers.

    For an item: cosine neighbours among items at that layer; for a user: the items with the
    highest dot product at that layer, excluding what the user already consumed.
    """
    ds = model.trained_on
    found = []
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
        found.append(chosen[0][chosen[0] >= 0])
    return found


def layer_neighbours(model, kind: str, code: int, k: int = 8) -> pd.DataFrame:
    """Titles of :func:`layer_neighbour_codes`, one column per layer, so a person sees
    propagation pull neighbours together."""
    titles = model.trained_on.item_titles()
    columns = {}
    for layer, chosen in enumerate(layer_neighbour_codes(model, kind, code, k)):
        column = [titles[i] for i in chosen]
        columns[f"after {layer} layer{'s' if layer != 1 else ''}"] = column + [""] * (k - len(column))
    return pd.DataFrame(columns)

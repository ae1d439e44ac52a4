"""Our models beside the same algorithms from the field's libraries, on one split, scored by one evaluator.

Run with ``python -m recsys bench --peers`` (the libraries are optional: ``pip install -r
requirements-bench.txt -c requirements.txt``), or from Python::

    python -c "from pathlib import Path; from recsys import peers; peers.main(None, 42, Path('docs'))"

Each algorithm is trained once by us, at default parameters, and once by every installed peer
library, on the same split of the same data (per-user random 80/20; SASRec: each user's last
interaction held out); the peer's
model is wrapped in :class:`PeerRecommender` so that :func:`recsys.evaluation.evaluate` ranks its
scores exactly as it ranks ours (full catalogue, training items excluded). The rows go into the
``## Beside the field's libraries`` section of ``benchmarks.md``; other sections are left as they are.

Peer settings follow ours wherever the two libraries define a setting the same way (size, passes,
regularisation, confidence); where they do not (optimiser, negative sampling), the peer keeps its own
default. :data:`PEERS` lists each mapping and the section prints it. Peers run single-threaded.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recsys.data import Dataset, load

HEADING = "## Beside the field's libraries"
SPLIT_NAMES = {"random": "random 80/20", "leave_last": "leave last out"}
TIMER_NOISE_SECONDS = 0.01
# Every math library a peer may reach: set before a peer loads it, and limited again at run time
# (threadpoolctl, torch) because numpy and torch are loaded long before the peers run.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


# ---------------------------------------------------------------------------- the adapter

class PeerRecommender:
    """A fitted peer model seen through our ``score(users)`` contract.

    ``peer_users[code]`` / ``peer_items[code]`` give the peer's own index of each of our dense user /
    item codes (-1 when the peer never saw it: a library that builds its own id map drops users and
    items without training interactions). ``score_peer(peer_user_indices)`` returns the peer's score
    matrix, one row per user, one column per peer item index. Items the peer does not know score
    -inf, so they are never recommended; a user the peer does not know gets an all -inf row.
    """

    def __init__(self, label: str, train: Dataset, peer_users: np.ndarray, peer_items: np.ndarray,
                 score_peer: Callable[[np.ndarray], np.ndarray], peer_model=None):
        peer_users = np.asarray(peer_users, dtype=np.int64)
        peer_items = np.asarray(peer_items, dtype=np.int64)
        if peer_users.shape != (train.n_users,) or peer_items.shape != (train.n_items,):
            raise ValueError(f"the id maps must cover every user ({train.n_users}) and item ({train.n_items}) code; "
                             f"got {peer_users.shape[0]} users and {peer_items.shape[0]} items")
        self.label = label
        self.train_ = train  # the evaluator checks that the model was fitted on this split's train
        self.peer_users = peer_users
        self.peer_items = peer_items
        self.score_peer = score_peer
        self.peer_model = peer_model  # the library's own fitted object, for inspection

    @property
    def is_fitted(self) -> bool:
        return True  # built from a peer model that has already been fitted

    def score(self, users) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        out = np.full((len(users), len(self.peer_items)), -np.inf, dtype=np.float32)
        peer_rows = self.peer_users[users]
        known_users = peer_rows >= 0
        known_items = self.peer_items >= 0
        if known_users.any() and known_items.any():
            peer_scores = np.asarray(self.score_peer(peer_rows[known_users]), dtype=np.float32)
            out[np.ix_(known_users, known_items)] = peer_scores[:, self.peer_items[known_items]]
        return out


def index_map(peer_id_map: dict, external_ids: np.ndarray) -> np.ndarray:
    """The peer's index of each of our codes, through the external id the peer was given (-1 if absent)."""
    import pandas as pd

    peer_ids = np.fromiter(peer_id_map.values(), dtype=np.int64, count=len(peer_id_map))
    found = pd.Index(list(peer_id_map.keys())).get_indexer(external_ids)
    return np.where(found >= 0, peer_ids[np.clip(found, 0, None)] if len(peer_ids) else -1, -1)


def per_user_scores(score_one: Callable[[int], np.ndarray], peer_users: np.ndarray) -> np.ndarray:
    """Rows from a library that scores one user per call (it has no batch form to call instead)."""
    return np.vstack([np.asarray(score_one(int(u)), dtype=np.float32) for u in peer_users])


# ---------------------------------------------------------------------------- peers

@dataclass(frozen=True)
class Peer:
    algorithm: str           # what the row compares, e.g. "BPR-MF"
    ours: str                # our registry key
    library: str             # the package's import name (and its PyPI name)
    name: str                # the library's class
    settings: str            # how our defaults were mapped onto the peer's parameters
    fit: Callable            # (train, seed) -> (PeerRecommender, fit seconds of the library's own fit call)
    protocol: str = "random"  # the split both are trained on (recsys.bench.PROTOCOLS)


def _cornac_data(train: Dataset, seed: int):
    """Our training positives as a cornac Dataset keyed by our external ids (cornac builds its own indices)."""
    import cornac

    positives = train.positives.tocoo()
    triples = list(zip(train.user_ids[positives.row].tolist(), train.item_ids[positives.col].tolist(),
                       np.ones(positives.nnz).tolist()))
    return cornac.data.Dataset.from_uir(triples, seed=seed)


def _fit_cornac(train: Dataset, seed: int, label: str, build: Callable, score_batch: Callable | None = None):
    """Fit a cornac model on ``train``; score through ``score_batch(model, rows)`` or cornac's per-user score."""
    data = _cornac_data(train, seed)
    model = build()
    start = time.perf_counter()
    model.fit(data)
    seconds = time.perf_counter() - start

    def score_peer(rows):
        if score_batch is not None:
            return score_batch(model, rows)
        return per_user_scores(model.score, rows)

    adapter = PeerRecommender(label, train, index_map(data.uid_map, train.user_ids),
                              index_map(data.iid_map, train.item_ids), score_peer, model)
    return adapter, seconds


def _cornac_vectors(model, rows):
    # user vectors end in a 1 and item vectors in the item bias, so the product is cornac's own score
    return model.get_user_vectors()[rows] @ model.get_item_vectors().T


def _cornac_ease(model, rows):
    return np.asarray(model.U[rows] @ model.B)


def _cornac_vae(model, rows):
    import torch

    with torch.no_grad():
        histories = (model.r_mat[rows] > 0).astype(np.float32).toarray()
        codes, _ = model.vae.encode(torch.from_numpy(histories).to(model.device))
        return model.vae.decode(codes).cpu().numpy()


def _fit_implicit(train: Dataset, seed: int, label: str, build: Callable, score_batch: Callable):
    """Fit an implicit model on our user x item positives; implicit indexes rows and columns by our codes."""
    user_items = sp.csr_matrix(train.positives, dtype=np.float32)
    model = build()
    start = time.perf_counter()
    model.fit(user_items, show_progress=False)
    seconds = time.perf_counter() - start
    identity_users, identity_items = np.arange(train.n_users), np.arange(train.n_items)
    adapter = PeerRecommender(label, train, identity_users, identity_items,
                              lambda rows: score_batch(model, user_items, rows), model)
    return adapter, seconds


def _implicit_factors(model, user_items, rows):
    return model.user_factors[rows] @ model.item_factors.T


def _implicit_neighbours(model, user_items, rows):
    return (user_items[rows] @ model.similarity).toarray()


def _cornac_bpr(train, seed):
    import cornac
    return _fit_cornac(train, seed, "cornac BPR", lambda: cornac.models.BPR(
        k=64, max_iter=60, learning_rate=0.01, lambda_reg=0.01, num_threads=1, seed=seed), _cornac_vectors)


def _implicit_bpr(train, seed):
    from implicit.cpu.bpr import BayesianPersonalizedRanking
    return _fit_implicit(train, seed, "implicit BPR", lambda: BayesianPersonalizedRanking(
        factors=64, learning_rate=0.01, regularization=0.01, iterations=60, num_threads=1, random_state=seed),
        _implicit_factors)


def _implicit_als(train, seed):
    from implicit.cpu.als import AlternatingLeastSquares
    # implicit's confidence is alpha x value (1 for unseen cells); ours is 1 + alpha: 1 + 5 = 6
    return _fit_implicit(train, seed, "implicit ALS", lambda: AlternatingLeastSquares(
        factors=64, regularization=50.0, alpha=6.0, iterations=15, use_cg=True, num_threads=1,
        random_state=seed), _implicit_factors)


def _implicit_cosine(train, seed):
    from implicit.nearest_neighbours import CosineRecommender
    return _fit_implicit(train, seed, "implicit Cosine", lambda: CosineRecommender(K=200, num_threads=1),
                         _implicit_neighbours)


def _cornac_vaecf(train, seed):
    import cornac
    return _fit_cornac(train, seed, "cornac VAECF", lambda: cornac.models.VAECF(
        k=200, autoencoder_structure=[600], likelihood="mult", n_epochs=60, batch_size=64,
        learning_rate=0.002, beta=0.5, seed=seed), _cornac_vae)


def _cornac_neumf(train, seed):
    import cornac
    return _fit_cornac(train, seed, "cornac NeuMF", lambda: cornac.models.NeuMF(
        num_factors=16, layers=(64, 32, 16), num_epochs=10, batch_size=4096, num_neg=8, lr=0.01,
        backend="pytorch", verbose=False, seed=seed))


def _cornac_ease_model(train, seed):
    import cornac
    return _fit_cornac(train, seed, "cornac EASE", lambda: cornac.models.EASE(
        lamb=500.0, posB=False, verbose=False, seed=seed), _cornac_ease)


def _cornac_most_pop(train, seed):
    import cornac
    return _fit_cornac(train, seed, "cornac MostPop", lambda: cornac.models.MostPop())


def _sasrec_defaults():
    from recsys.models.registry import get

    return get("sasrec").Params()


def _sasrec_mapping() -> str:
    ours = _sasrec_defaults()
    return (f"embedding_dim = {ours.embedding_size}, num_blocks = {ours.layers}, num_heads = {ours.heads}, "
            f"dropout = {ours.dropout}, max_len = {ours.max_len}, loss = 'ce' as ours; cornac's own defaults for "
            "the rest: n_epochs = 10, batch_size = 512 prefixes, learning_rate = 0.001, n_sample = 2048 sampled "
            "negatives (cornac trains every prefix of a history as its own example; ours trains every position "
            f"of a history in one pass, {ours.epochs} epochs)")


def _cornac_sasrec(train, seed):
    """cornac's SASRec on each user's training history in our time order (ties by item code, as the split)."""
    import cornac

    histories = train.histories_in_time_order()
    # the position in our order is the timestamp cornac sees, so its sequences are ours exactly
    rows = zip(train.user_ids[histories.users].tolist(), histories.users.tolist(),
               train.item_ids[histories.items].tolist(), range(len(histories.items)))
    data = cornac.data.SequentialDataset.from_usit(list(rows), seed=seed)
    ours = _sasrec_defaults()  # the same network as our default: a change of ours changes the peer's
    model = cornac.models.SASRec(embedding_dim=ours.embedding_size, num_blocks=ours.layers, num_heads=ours.heads,
                                 dropout=ours.dropout, max_len=ours.max_len, loss="ce", seed=seed)
    start = time.perf_counter()
    model.fit(data)
    seconds = time.perf_counter() - start
    peer_users = index_map(data.uid_map, train.user_ids)
    peer_items = index_map(data.iid_map, train.item_ids)
    windows = last_windows(histories, peer_items, model.max_len, model.pad_idx)
    code_of_peer_user = np.empty(data.num_users, dtype=np.int64)
    code_of_peer_user[peer_users[peer_users >= 0]] = np.flatnonzero(peer_users >= 0)

    def score_peer(rows):
        import torch

        model.model.eval()
        with torch.no_grad():
            scores = model.model.predict(None, torch.from_numpy(windows[code_of_peer_user[rows]]))
        return np.atleast_2d(scores)

    return PeerRecommender("cornac SASRec", train, peer_users, peer_items, score_peer, model), seconds


def last_windows(histories, peer_items: np.ndarray, length: int, pad: int) -> np.ndarray:
    """(users x length) the last ``length`` items of each user's history in the peer's item indices,
    oldest first, left-padded with ``pad``: the input a SASRec reads to predict the next item."""
    ends = histories.starts[1:]
    positions = ends[:, None] - length + np.arange(length)[None, :]
    inside = positions >= histories.starts[:-1, None]
    items = peer_items[histories.items[np.clip(positions, 0, None)]] if len(histories.items) else positions
    return np.where(inside, items, pad).astype(np.int64)


LEFT_OUT = ("Left out: cornac's ItemKNN predicts a rating as the similarity-weighted mean of the user's "
            "ratings, which is 1 for every item when every interaction is a 1 (NDCG@10 0.070 here), so it "
            "cannot rank this data.")
PEERS: tuple[Peer, ...] = (
    Peer("BPR-MF", "bpr_mf", "cornac", "BPR", "k = 64 factors, max_iter = 60 epochs, lambda_reg = 0.01, "
         "learning_rate = 0.01 (plain SGD per triple; ours is Adam with batches of 8,192). Not tuned: with "
         "max_iter = 200 it reached NDCG@10 0.409 on this split", _cornac_bpr),
    Peer("BPR-MF", "bpr_mf", "implicit", "BayesianPersonalizedRanking", "factors = 64, iterations = 60, "
         "regularization = 0.01, learning_rate = 0.01 (SGD per triple)", _implicit_bpr),
    Peer("iALS", "ials", "implicit", "AlternatingLeastSquares", "factors = 64, regularization = 50, alpha = 6 "
         "(implicit's confidence is alpha x value, ours 1 + alpha with alpha = 5), iterations = 15, "
         "conjugate gradient with 3 steps (both)", _implicit_als),
    Peer("Mult-VAE", "mult_vae", "cornac", "VAECF", "one hidden layer of 600, latent k = 200, multinomial "
         "likelihood, n_epochs = 60, batch_size = 64, learning_rate = 0.002, beta = 0.5 (cornac: fixed beta, "
         "no input dropout, constant learning rate; ours anneals beta, drops 50 % of the input and decays the "
         "rate)", _cornac_vaecf),
    Peer("NeuMF", "neumf", "cornac", "NeuMF", "PyTorch backend, layers = (64, 32, 16) as ours, num_factors = 16 (cornac's GMF "
         "size must equal the last MLP layer; ours is 32), "
         "num_epochs = 10, batch_size = 4096, num_neg = 8, lr = 0.01, reg = 0 (cornac's reg is Adam weight "
         "decay, not ours); no pretraining (ours pretrains GMF and MLP, then fine-tunes 2 epochs)", _cornac_neumf),
    Peer("EASE", "ease", "cornac", "EASE", "lamb = 500, posB = False (ours does not clip weights)",
         _cornac_ease_model),
    Peer("Item-kNN", "item_knn", "implicit", "CosineRecommender", "K = 200, cosine (ours also weights each "
         "user 1/n)", _implicit_cosine),
    Peer("Most popular", "pop", "cornac", "MostPop", "no settings", _cornac_most_pop),
    Peer("SASRec", "sasrec", "cornac", "SASRec", _sasrec_mapping(), _cornac_sasrec, protocol="leave_last"),
)


# ---------------------------------------------------------------------------- rows

@dataclass
class PeerRow:
    algorithm: str
    ours: str
    ours_ndcg_10: float
    ours_fit_seconds: float
    library: str
    peer: str
    status: str                          # "ok", "not installed" or "failed: ..."
    peer_ndcg_10: float | None = None
    peer_fit_seconds: float | None = None
    protocol: str = "random"

    @property
    def quality_ratio(self) -> float | None:
        """Our NDCG@10 over the peer's (above 1: ours ranks better)."""
        if self.peer_ndcg_10 is None or self.peer_ndcg_10 <= 0:
            return None
        return self.ours_ndcg_10 / self.peer_ndcg_10

    @property
    def time_ratio(self) -> float | None:
        """Our fit seconds over the peer's (below 1: ours trains faster); none when either fit is shorter
        than the timer noise (a popularity count takes microseconds)."""
        if self.peer_fit_seconds is None or min(self.peer_fit_seconds, self.ours_fit_seconds) < TIMER_NOISE_SECONDS:
            return None
        return self.ours_fit_seconds / self.peer_fit_seconds


def installed(library: str) -> bool:
    return importlib.util.find_spec(library) is not None


def library_version(library: str) -> str:
    try:
        return importlib.metadata.version(library)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


@contextmanager
def single_threaded():
    """Every thread pool a peer may use limited to one thread, restored afterwards."""
    import torch
    from threadpoolctl import threadpool_limits

    saved_env = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    saved_torch = torch.get_num_threads()
    os.environ.update({name: "1" for name in THREAD_VARIABLES})
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(saved_torch)
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_peer(peer: Peer, train: Dataset, test: Dataset, seed: int) -> tuple[str, float | None, float | None]:
    """(status, NDCG@10, fit seconds) of ``peer`` on this split; a missing library is a status, not an error."""
    from recsys import experiment

    if not installed(peer.library):
        return "not installed", None, None
    try:
        with single_threaded():
            adapter, seconds = peer.fit(train, seed)
            report = experiment.evaluate_model(adapter, train, test, k=experiment.EVAL_K, bootstrap=0)
    except Exception as error:  # one broken peer must not lose the other rows: the row says what failed
        return f"failed: {type(error).__name__}: {error}".replace("\n", " ")[:200], None, None
    return "ok", report.means["ndcg@10"], seconds


def compare(split: Callable[[str], tuple[Dataset, Dataset]], seed: int, algorithms: list[str] | None = None,
            peers: tuple[Peer, ...] = PEERS, log=print) -> list[PeerRow]:
    """Our model (default parameters) and each peer of every algorithm (or only ``algorithms``, our keys).

    ``split(protocol)`` gives the (train, test) pair of a protocol; ours and the peer train on the same one.
    """
    from recsys.bench import bench_model

    chosen = [p for p in peers if algorithms is None or p.ours in algorithms]
    ours = {}
    rows = []
    for peer in chosen:
        train, test = split(peer.protocol)
        if (peer.ours, peer.protocol) not in ours:
            mine = bench_model(peer.ours, train, test, train.name, protocol=peer.protocol)
            ours[peer.ours, peer.protocol] = mine
            log(f"  ours {peer.ours} ({peer.protocol}): NDCG@10 {mine.ndcg_10:.4f}, fit {mine.fit_seconds:.2f} s")
        status, ndcg, seconds = run_peer(peer, train, test, seed)
        log(f"  {peer.library} {peer.name}: {status}" + (f", NDCG@10 {ndcg:.4f}, fit {seconds:.2f} s"
                                                         if status == "ok" else ""))
        mine = ours[peer.ours, peer.protocol]
        rows.append(PeerRow(peer.algorithm, peer.ours, mine.ndcg_10, mine.fit_seconds, peer.library, peer.name,
                            status, ndcg, seconds, peer.protocol))
    return rows


# ---------------------------------------------------------------------------- markdown

def _number(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def to_markdown(rows: list[PeerRow], dataset: str, seed: int, peers: tuple[Peer, ...] = PEERS,
                note: str = "") -> str:
    """The section: one row per (algorithm, peer), the settings mapping, threads and versions."""
    import torch

    threads = torch.get_num_threads()
    libraries = sorted({p.library for p in peers})
    versions = ", ".join(f"{name} {library_version(name)}" for name in libraries)
    lines = [
        f"{HEADING} — {dataset}", "",
        "Written by `python -m recsys bench --peers` (peer libraries: `pip install -r requirements-bench.txt -c requirements.txt`). "
        f"Per-user random 80/20 split (seed {seed}; sequential models: each user's last interaction held out), "
        "ours and the peer on the same train and test in every row; every model is "
        "ranked by our evaluator (full catalogue, training items excluded; an item the peer never saw in "
        f"training scores -inf). Ours: default parameters, {threads} torch thread{'' if threads == 1 else 's'} "
        f"on {os.cpu_count()} cores (the process's setting when it ran). Peers: one thread (library "
        "options and every thread pool limited to 1). Fit s = wall-clock seconds of the fit call alone (for a "
        "peer, converting our data to its format is not counted). *NDCG ours/peer* above 1 = ours ranks "
        "better; *fit ours/peer* below 1 = ours trains faster. "
        f"Machine: {platform.machine()}, Python {platform.python_version()}; {versions}.", "",
    ]
    if note:
        lines += [note, ""]
    lines += ["| algorithm | split | ours | ours NDCG@10 | ours fit s | peer library | peer | peer NDCG@10 "
              "| peer fit s | NDCG ours/peer | fit ours/peer |",
              "|---|---|---|---:|---:|---|---|---:|---:|---:|---:|"]
    for r in rows:
        if r.status == "ok":
            peer_cells = (f"{_number(r.peer_ndcg_10, 4)} | {_number(r.peer_fit_seconds, 2)} | "
                          f"{_number(r.quality_ratio, 3)} | {_number(r.time_ratio, 2)}")
        else:
            peer_cells = f"{r.status} | — | — | —"
        lines.append(f"| {r.algorithm} | {SPLIT_NAMES[r.protocol]} | `{r.ours}` | {r.ours_ndcg_10:.4f} | {r.ours_fit_seconds:.2f} | "
                     f"{r.library} | {r.peer} | {peer_cells} |")
    lines += ["", "How our defaults map onto each peer's parameters (where the two define a setting "
              "differently, the peer keeps its own default):", ""]
    lines += [f"* {p.library} {p.name} (beside `{p.ours}`): {p.settings}." for p in peers
              if any(r.library == p.library and r.peer == p.name for r in rows)]
    lines += ["", LEFT_OUT]
    return "\n".join(lines) + "\n\n"


def write(rows: list[PeerRow], out_dir: Path, dataset: str, seed: int, note: str = "") -> Path:
    """Replace (or add) the section in ``out_dir/benchmarks.md``, keeping every other section."""
    from recsys.bench import write_section

    path = out_dir / "benchmarks.md"
    write_section(path, HEADING, to_markdown(rows, dataset, seed, note=note))
    return path


def main(data_path: Path | None, seed: int, out_dir: Path, algorithms: list[str] | None = None,
         note: str = "", log=print) -> int:
    """``python -m recsys bench --peers``: ours and the peers on ``data_path`` (default ML-100K), written to
    ``out_dir/benchmarks.md``. ``algorithms`` (our keys, e.g. ``["bpr_mf", "ials"]``) limits the rows; the
    section is rewritten with those rows only. Returns the exit status."""
    from recsys.bench import _split, find_dataset

    path = data_path if data_path is not None else find_dataset("ml-100k")
    ds = load(path)
    splits = {}

    def split(protocol):
        if protocol not in splits:
            splits[protocol] = _split(ds, protocol, seed)
        return splits[protocol]

    log(f"{ds.name}: {ds.n_users} users, {ds.n_items} items; peers installed: "
        + (", ".join(sorted({p.library for p in PEERS if installed(p.library)})) or "none"))
    rows = compare(split, seed, algorithms, log=log)
    written = write(rows, out_dir, ds.name, seed, note=note)
    log(f"wrote {written}")
    return 0

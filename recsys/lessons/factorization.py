"""Matrix factorization: how big an embedding, what one BPR step does, and rating vs ranking."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.data.dataset import Dataset
from recsys.data.errors import DataError
from recsys.data.split import SplitConfig, make_split
from recsys.evaluation import metrics
from recsys.lessons.base import Context, Lesson, LessonResult, Setup, parse_numbers
from recsys.lessons.sparsity import generated_world
from recsys.models.base import param

SPLIT = {"method": "random", "test_fraction": 0.2, "seed": 42}
SIZE_CHOICES = ("Test NDCG keeps rising with train NDCG",
                "Test NDCG falls while train NDCG keeps rising: the model memorises its training data",
                "Both fall")
# a fall of test NDCG smaller than this share of its peak is "flat", not a fall
FALL_SHARE = 0.05


def _data(context: Context, users: int, items: int, seed: int = 7) -> Dataset:
    return context.dataset if context.dataset is not None else generated_world(users, items, seed)


# ------------------------------------------------------------------ embedding size: train and test curves
@dataclass
class SizeKnobs:
    model: str = param("pure_svd", help="Factor model swept.", choices=("pure_svd", "ials"))
    sizes: str = param("2, 4, 8, 16, 32, 64, 96", help="Embedding sizes, one run each.")
    k: int = param(10, help="List length of NDCG.", low=1, high=50)
    users: int = param(600, help="People in the generated world (used when the app has no dataset).",
                       low=100, high=3000)
    items: int = param(400, help="Films in the generated world.", low=50, high=2000)


def train_ndcg(model, train: Dataset, k: int, batch: int = 1024) -> float:
    """NDCG@k of ranking each person's own training items back, nothing excluded: how well the model fits.

    The usual evaluation removes training items from the lists; here they are the answers, so a
    model that memorises its training data scores 1.
    """
    users = np.flatnonzero(np.diff(train.positives.indptr) > 0)
    values = []
    for start in range(0, len(users), batch):
        block = users[start:start + batch]
        scores = np.asarray(model.score(block), np.float64)
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        relevant = train.positives[block]
        hits = np.take_along_axis(relevant.toarray() > 0, top, axis=1)
        values.append(metrics.ndcg(hits, np.diff(relevant.indptr), k))
    return float(np.concatenate(values).mean())


def size_sweep(knobs: SizeKnobs, context: Context) -> LessonResult:
    sizes = sorted({int(s) for s in parse_numbers(knobs.sizes, "Embedding sizes", low=1, high=1024, min_len=3)})
    if len(sizes) < 3:
        raise DataError("List at least three different embedding sizes so the curve has a middle.")
    ds = _data(context, knobs.users, knobs.items)
    train = make_split(ds, SplitConfig.coerce(SPLIT)).train
    rows = []
    for size in sizes:
        params = {"embedding_size": size}
        if knobs.model == "ials":
            # a light penalty: with the default (strong) one the large sizes barely overfit
            params.update(reg=1.0, iterations=8)
        model, report = context.train(ds, SPLIT, knobs.model, params)
        rows.append({"embedding size": size, "train NDCG": train_ndcg(model, train, knobs.k),
                     "test NDCG": report.means[f"ndcg@{knobs.k}"] if f"ndcg@{knobs.k}" in report.means
                     else float(metrics.ndcg(report.hits, report.n_relevant, knobs.k).mean())})
    table = pd.DataFrame(rows)
    best = int(table["test NDCG"].idxmax())
    peak, last = table.iloc[best], table.iloc[-1]
    test_falls = last["test NDCG"] < (1 - FALL_SHARE) * peak["test NDCG"]
    train_rises = last["train NDCG"] > peak["train NDCG"]
    correct = 0 if not test_falls else 1 if train_rises else 2
    figures = {"best_size": float(peak["embedding size"]), "best_test": float(peak["test NDCG"]),
               "largest_size": float(last["embedding size"]), "largest_test": float(last["test NDCG"]),
               "best_train": float(peak["train NDCG"]), "largest_train": float(last["train NDCG"]),
               "smallest_test": float(table["test NDCG"].iloc[0])}
    explanation = (
        f"Test NDCG@{knobs.k} peaks at size {peak['embedding size']:.0f} ({figures['best_test']:.3f}); at size "
        f"{last['embedding size']:.0f} it is {figures['largest_test']:.3f}, while train NDCG went "
        f"{figures['best_train']:.3f} → {figures['largest_train']:.3f}. "
        + ("Too small an embedding cannot hold the tastes (size "
           f"{sizes[0]} scores {figures['smallest_test']:.3f}); past the peak the extra directions fit the "
           "particular films each person happened to watch, which the test does not ask about."
           if correct == 1 else
           "On this data the largest size is still (close to) the best: try larger sizes or a smaller dataset."
           if correct == 0 else
           "Here both curves fall past the peak: the model no longer fits even its training data better.")
    )
    return LessonResult(figures=figures, correct=correct, explanation=explanation,
                        tables={"Train and test NDCG by embedding size": table})


# ------------------------------------------------------------------ one BPR step
STEP_CHOICES = ("It rises for every triplet", "It falls for every triplet", "It rises for some and falls for others")


@dataclass
class BprKnobs:
    user: str = param("", help="External id of the person (empty: a person of median activity).")
    triplets: int = param(6, help="Sampled (u, i, j) triplets.", low=1, high=50)
    embedding_size: int = param(8, help="Size of the small factor model's vectors.", low=1, high=128)
    init_std: float = param(0.5, help="Spread of the random starting vectors (larger: some triplets start "
                                      "well ordered, and move less).", low=0.0, high=5.0, step=0.05)
    lr: float = param(0.1, help="SGD step size.", low=0.0, high=10.0, step=0.05)
    reg: float = param(0.01, help="L2 penalty on the vectors the step touches.", low=0.0, high=10.0, step=0.01)
    seed: int = param(0, help="Seed of the starting vectors and of the sampled triplets.", low=0, high=10_000)
    users: int = param(300, help="People in the generated world (used when the app has no dataset).",
                       low=100, high=3000)
    items: int = param(200, help="Films in the generated world.", low=50, high=2000)


def pick_user(ds: Dataset, external: str) -> int:
    if not str(external).strip():
        active = np.flatnonzero(ds.user_activity > 0)
        order = active[np.argsort(ds.user_activity[active], kind="stable")]
        return int(order[len(order) // 2])
    code = int(ds.user_codes(np.array([str(external).strip()]))[0])
    if code < 0 or ds.user_activity[code] == 0:
        raise DataError(f"User {str(external)[:40]!r} is not in {ds.name}; leave it empty or pick an id from the Data page.")
    return code


def sample_triplets(ds: Dataset, user: int, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n (i, j) pairs for ``user``: i among their positives, j uniform among films they never touched."""
    positives = ds.positives[user].indices
    unseen = np.setdiff1d(np.arange(ds.n_items), ds.seen[user].indices, assume_unique=True)
    if len(positives) == 0 or len(unseen) == 0:
        raise DataError("This person has no positive or no unseen film to form a triplet; pick another.")
    return rng.choice(positives, size=n), rng.choice(unseen, size=n)


def bpr_step(p_u: np.ndarray, q_i: np.ndarray, q_j: np.ndarray, lr: float, reg: float):
    """One SGD step on each row's BPR loss -ln σ(x_uij), x_uij = p_u·(q_i - q_j), from the same start.

    The loss's slope is σ(-x_uij): a triplet already ordered (x_uij large) is barely pushed.
    """
    x = np.einsum("td,td->t", p_u, q_i - q_j)
    weight = 1.0 / (1.0 + np.exp(x))  # σ(-x)
    new_p = p_u + lr * (weight[:, None] * (q_i - q_j) - reg * p_u)
    new_i = q_i + lr * (weight[:, None] * p_u - reg * q_i)
    new_j = q_j + lr * (-weight[:, None] * p_u - reg * q_j)
    return new_p, new_i, new_j, weight


def _loss(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, -x)  # -ln σ(x), stable


def bpr_triplets(knobs: BprKnobs, context: Context) -> LessonResult:
    ds = _data(context, knobs.users, knobs.items)
    user = pick_user(ds, knobs.user)
    rng = np.random.default_rng(knobs.seed)
    user_vectors = rng.normal(0.0, knobs.init_std, (ds.n_users, knobs.embedding_size))
    item_vectors = rng.normal(0.0, knobs.init_std, (ds.n_items, knobs.embedding_size))
    pos, neg = sample_triplets(ds, user, knobs.triplets, rng)
    p_u = np.repeat(user_vectors[user][None, :], knobs.triplets, axis=0)
    q_i, q_j = item_vectors[pos], item_vectors[neg]
    new_p, new_i, new_j, weight = bpr_step(p_u, q_i, q_j, knobs.lr, knobs.reg)
    ui, uj = np.einsum("td,td->t", p_u, q_i), np.einsum("td,td->t", p_u, q_j)
    ui_after, uj_after = np.einsum("td,td->t", new_p, new_i), np.einsum("td,td->t", new_p, new_j)
    titles = ds.item_titles()
    table = pd.DataFrame({
        "i (watched)": titles[pos], "j (not watched)": titles[neg],
        "x_ui before": ui, "x_uj before": uj, "x_uij before": ui - uj, "loss before": _loss(ui - uj),
        "step weight σ(-x_uij)": weight,
        "x_ui after": ui_after, "x_uj after": uj_after, "x_uij after": ui_after - uj_after,
        "loss after": _loss(ui_after - uj_after),
    })
    change = table["x_uij after"] - table["x_uij before"]
    rises, falls = int((change > 0).sum()), int((change < 0).sum())
    correct = 0 if falls == 0 and rises > 0 else 1 if rises == 0 else 2
    best, worst = int(np.argmax(ui - uj)), int(np.argmin(ui - uj))
    figures = {"user": float(user), "rises": float(rises), "falls": float(falls),
               "mean_change": float(change.mean()), "largest_weight": float(weight.max()),
               "smallest_weight": float(weight.min()), "loss_before": float(table["loss before"].mean()),
               "loss_after": float(table["loss after"].mean()),
               "best_ordered_change": float(change.iloc[best]), "worst_ordered_change": float(change.iloc[worst])}
    explanation = (
        f"Of {knobs.triplets} triplets for user {ds.user_ids[user]}, one step raised x_ui − x_uj for {rises} and "
        f"lowered it for {falls} (mean change {figures['mean_change']:+.4f}); the mean loss went "
        f"{figures['loss_before']:.4f} → {figures['loss_after']:.4f}. The step moves p_u toward q_i − q_j, q_i "
        f"toward p_u and q_j away from it, each scaled by σ(−x_uij) (here {figures['smallest_weight']:.3f} to "
        f"{figures['largest_weight']:.3f}): the best-ordered triplet (x_uij {ui[best] - uj[best]:+.2f}) moved "
        f"{figures['best_ordered_change']:+.3f}, the worst-ordered ({ui[worst] - uj[worst]:+.2f}) "
        f"{figures['worst_ordered_change']:+.3f}. "
        + ("" if correct == 0 else
           "A fall means the L2 pull toward zero or too large a step outweighed the gradient: lower lr or reg.")
    )
    return LessonResult(figures=figures, correct=correct, explanation=explanation,
                        tables={"One SGD step per triplet": table})


# ------------------------------------------------------------------ rating -> ranking -> page
RANKING_CHOICES = (
    "It predicts ratings worse",
    "It predicts ratings just as well, but a high predicted rating is not what someone picks next",
    "It does not rank badly: both rank about the same",
)


@dataclass
class RankingKnobs:
    embedding_size: int = param(16, help="Embedding size of the rating model.", low=1, high=512)
    presence_embedding_size: int = param(16, help="Embedding size of the 'did they watch it' head.", low=1,
                                         high=512)
    epochs: int = param(4, help="Training epochs of both models.", low=1, high=100)
    batch_size: int = param(2048, help="Ratings per SGD step (larger: fewer, faster steps).", low=32, high=65536)
    users: int = param(300, help="People in the generated world (used when the app has no dataset).",
                       low=100, high=3000)
    items: int = param(200, help="Films in the generated world.", low=50, high=2000)


def _mean_popularity(report, train: Dataset, k: int) -> float:
    top = report.recommended[:, :k]
    return float(train.item_popularity[top[top >= 0]].mean())


def rating_vs_ranking(knobs: RankingKnobs, context: Context) -> LessonResult:
    ds = _data(context, knobs.users, knobs.items)
    if ds.feedback != "explicit":
        raise DataError("This lesson needs ratings (explicit feedback); load a dataset with a rating column.")
    train = make_split(ds, SplitConfig.coerce(SPLIT)).train
    base = {"embedding_size": knobs.embedding_size, "epochs": knobs.epochs, "batch_size": knobs.batch_size}
    rows = []
    for label, presence in (("rating only", 0), ("rating × presence", knobs.presence_embedding_size)):
        _, report = context.train(ds, SPLIT, "mf_sgd", {**base, "presence_embedding_size": presence})
        rows.append({"model": label, "NDCG@10": report.means["ndcg@10"], "test RMSE": report.rmse,
                     "mean training popularity of the top 10": _mean_popularity(report, train, 10)})
    table = pd.DataFrame(rows)
    only, both = table.iloc[0], table.iloc[1]
    if only["NDCG@10"] >= 0.9 * both["NDCG@10"]:
        correct = 2
    elif only["test RMSE"] > both["test RMSE"] + 0.02:
        correct = 0
    else:
        correct = 1
    figures = {"ndcg_rating_only": float(only["NDCG@10"]), "ndcg_presence": float(both["NDCG@10"]),
               "rmse_rating_only": float(only["test RMSE"]), "rmse_presence": float(both["test RMSE"]),
               "popularity_rating_only": float(only["mean training popularity of the top 10"]),
               "popularity_presence": float(both["mean training popularity of the top 10"])}
    explanation = (
        f"Both predict the test ratings with RMSE {figures['rmse_rating_only']:.3f} and "
        f"{figures['rmse_presence']:.3f}, yet their top-10 lists score NDCG@10 {figures['ndcg_rating_only']:.3f} "
        f"(rating only) and {figures['ndcg_presence']:.3f} (rating × presence). The rating-only lists pick films "
        f"with {figures['popularity_rating_only']:.1f} training interactions on average, against "
        f"{figures['popularity_presence']:.1f}: a rating model learns how people rate what they chose, never "
        "what they choose, so a little-seen film with a few high ratings tops everyone's page."
    )
    return LessonResult(figures=figures, correct=correct, explanation=explanation,
                        tables={"Rating model against rating × presence": table})


LESSONS = [
    Lesson(
        key="embedding_size",
        chapter="Matrix factorization",
        title="Embedding too small, too large",
        framing=(
            "A factor model squeezes each person and each film into a vector of a chosen size. Too small "
            "and it cannot tell tastes apart; too large and it can memorise who watched what. Sweep the "
            "size and compare how well the model fits its training data with how well it predicts the test."
        ),
        question="Past the size where test NDCG peaks, what happens as the embedding grows?",
        choices=SIZE_CHOICES,
        Knobs=SizeKnobs,
        compute=size_sweep,
        setup=Setup(runs=tuple(("pure_svd", {"embedding_size": s}) for s in (2, 4, 8, 16, 32, 64, 96)),
                    page="compare"),
    ),
    Lesson(
        key="bpr_step",
        chapter="Matrix factorization",
        title="What one BPR step does",
        framing=(
            "BPR learns from triplets: a person u, a film i they watched and a film j they did not. Its "
            "loss asks for x_ui > x_uj. Sample a few triplets from a small factor model and take one "
            "gradient step on each."
        ),
        question="After one SGD step on a triplet (u, i, j), what happens to x_ui − x_uj?",
        choices=STEP_CHOICES,
        Knobs=BprKnobs,
        compute=bpr_triplets,
    ),
    Lesson(
        key="rating_to_ranking",
        chapter="Matrix factorization",
        title="Rating → ranking → page",
        framing=(
            "Predicting the stars someone would give a film is not the same job as choosing the ten films "
            "for their page. Train the same rating model twice: ranking by predicted rating alone, and "
            "multiplying it with a second head that learns whether a person watches a film at all."
        ),
        question="Why does the rating-only model rank badly?",
        choices=RANKING_CHOICES,
        Knobs=RankingKnobs,
        compute=rating_vs_ranking,
        setup=Setup(runs=(("mf_sgd", {"presence_embedding_size": 0}), ("mf_sgd", {})), page="compare"),
    ),
]

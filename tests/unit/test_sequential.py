"""Sequential models: Markov chain, SASRec and GRU4Rec learn what comes next."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from recsys.data import Dataset
from recsys.inspection.attention import user_sequence
from recsys.models import create
from recsys.models.sequential import (
    ByteDropout,
    full_softmax_cross_entropy,
    next_item_pairs,
    sequence_windows,
    time_ordered,
)
from recsys.models.training import length_batches

N_ITEMS, A, B, COMMON = 30, 0, 1, 2
NOISE = np.arange(3, N_ITEMS)

# small and quick, but enough to learn the synthetic pattern below
SMALL = {
    "markov": {},
    "sasrec": {"embedding_size": 32, "layers": 1, "heads": 2, "dropout": 0.1, "max_len": 16, "epochs": 15, "lr": 1e-2},
    "gru4rec": {"embedding_size": 32, "dropout": 0.1, "max_len": 16, "epochs": 15, "lr": 1e-2},
}


def _a_then_b(seed: int = 0, n_users: int = 80) -> Dataset:
    """Half the users consumed A and, right after it, B, somewhere among noise items; every user
    also consumed COMMON, the most popular item. Only the order says that B follows A."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(n_users):
        items = list(rng.choice(NOISE, size=8, replace=False))
        items.insert(int(rng.integers(0, len(items) + 1)), COMMON)
        if user % 2 == 0:
            at = int(rng.integers(0, len(items) + 1))
            items[at:at] = [A, B]
        rows += [(user, int(item), 1.0, 100 * user + t) for t, item in enumerate(items)]
    frame = pd.DataFrame(rows, columns=["user", "item", "rating", "ts"])
    return Dataset.from_frame(frame, timestamp="ts", name="A then B")


@pytest.fixture(scope="module")
def a_then_b():
    return _a_then_b()


@pytest.fixture(scope="module")
def fitted(a_then_b):
    return {key: create(key, **params).fit(a_then_b) for key, params in SMALL.items()}


def _rank_among_unseen(scores: np.ndarray, history, item: int) -> int:
    scores = np.asarray(scores, dtype=np.float64).copy()
    scores[np.asarray(history)] = -np.inf
    return int(np.sum(scores > scores[item])) + 1


@pytest.mark.parametrize("key", sorted(SMALL))
def test_b_is_the_top_recommendation_after_a(key, fitted):
    for history in ([5, 9, A], [COMMON, 17, 4, 22, A], [A]):
        scores = fitted[key].score_history(history)
        assert scores.shape == (N_ITEMS,) and scores.dtype == np.float32
        assert _rank_among_unseen(scores, history, B) == 1, (key, history)


def test_popularity_alone_does_not_put_b_first(a_then_b):
    """The synthetic data can fail a model: without the order, COMMON beats B."""
    pop = create("pop").fit(a_then_b)
    assert _rank_among_unseen(pop.score_history([5, 9, A]), [5, 9, A], B) > 1


@pytest.mark.parametrize("key", sorted(SMALL))
def test_score_history_of_a_training_sequence_equals_the_users_score(key, fitted, a_then_b):
    model = fitted[key]
    users = np.array([0, 1, 7, 42, 79])
    direct = model.score(users)
    for row, user in zip(direct, users):
        np.testing.assert_allclose(model.score_history(user_sequence(a_then_b, user)), row, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("key", ["sasrec", "gru4rec"])
def test_same_seed_same_model_other_seed_other_model(key, a_then_b):
    params = {**SMALL[key], "epochs": 3}
    users = np.arange(a_then_b.n_users)
    first = create(key, **params).fit(a_then_b).score(users)
    np.testing.assert_array_equal(first, create(key, **params).fit(a_then_b).score(users))
    assert not np.array_equal(first, create(key, **params, seed=7).fit(a_then_b).score(users))


def _margin(scores: np.ndarray, history, item: int) -> float:
    """How far ``item`` scores above the best other unseen item."""
    others = np.asarray(scores, dtype=np.float64).copy()
    others[np.r_[np.asarray(history), item]] = -np.inf
    return float(scores[item] - others.max())


@pytest.mark.parametrize("key", sorted(SMALL))
def test_score_history_reads_the_order_given(key, fitted):
    model = fitted[key]
    assert _margin(model.score_history([5, 9, A]), [5, 9, A], B) > _margin(model.score_history([A, 5, 9]), [A, 5, 9], B)


# ---------------------------------------------------------------------------- Markov chain


def _tiny_log() -> Dataset:
    # user 0 has a timestamp tie (items 3 and 1 at t=20): the item id breaks it, 1 before 3
    rows = [(0, 0, 10), (0, 3, 20), (0, 1, 20), (0, 2, 30),
            (1, 0, 5), (1, 1, 6), (1, 2, 7),
            (2, 1, 1), (2, 0, 2), (2, 4, 3),
            (3, 4, 9)]
    frame = pd.DataFrame(rows, columns=["user", "item", "ts"]).assign(rating=1.0)
    return Dataset.from_frame(frame, timestamp="ts", name="tiny")


def _brute_force_counts(ds: Dataset) -> np.ndarray:
    counts = np.zeros((ds.n_items, ds.n_items))
    for user in range(ds.n_users):
        events = sorted((int(t), int(i)) for u, i, t in zip(ds.user, ds.item, ds.timestamp) if u == user)
        for (_, before), (_, after) in zip(events, events[1:]):
            counts[before, after] += 1
    return counts


@pytest.mark.parametrize("smoothing", [0.0, 2.0])
def test_markov_transition_probabilities_match_brute_force_counts(smoothing):
    ds = _tiny_log()
    model = create("markov", smoothing=smoothing, window=1).fit(ds)
    counts = _brute_force_counts(ds)
    assert counts[1, 3] == 1 and counts[3, 1] == 0, "the tie must be broken by item id"
    popularity = np.bincount(ds.item, minlength=ds.n_items) / ds.n_interactions
    for item in range(ds.n_items):
        out = counts[item].sum()
        expected = (counts[item] + smoothing * popularity) / (out + smoothing) if out + smoothing else popularity
        probabilities = model.transition_probabilities(item)
        np.testing.assert_allclose(probabilities, expected, atol=1e-12)
        assert probabilities.sum() == pytest.approx(1.0)
        # with window=1 a history is scored by its last item's row alone
        np.testing.assert_allclose(model.score_history([4, item]), expected, atol=1e-6)


def test_markov_window_mixes_recent_items_with_decay():
    ds = _tiny_log()
    model = create("markov", smoothing=1.0, window=2, decay=0.5).fit(ds)
    expected = (0.5 * model.transition_probabilities(0) + 1.0 * model.transition_probabilities(1)) / 1.5
    np.testing.assert_allclose(model.score_history([2, 0, 1]), expected, atol=1e-6)


# ---------------------------------------------------------------------------- SASRec attention


@pytest.mark.parametrize("length", [1, 5, 16, 23])
def test_attention_rows_sum_to_one_and_never_look_ahead(fitted, length):
    model = fitted["sasrec"]
    history = np.random.default_rng(length).choice(N_ITEMS, size=length)
    weights = model.attention(history)
    shown = min(length, model.params.max_len)
    assert weights.shape == (model.params.layers, model.params.heads, shown, shown)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, atol=1e-5)
    future = np.triu(np.ones((shown, shown), dtype=bool), k=1)
    assert np.all(weights[..., future] == 0.0)
    assert np.all(weights >= 0.0)


def test_influences_are_each_recommendations_share_of_attention_times_similarity(fitted):
    import re

    from recsys.inspection.attention import next_items_with_influences

    model = fitted["sasrec"]
    history = np.array([3, 7, 1, 12, 5])
    table = next_items_with_influences(model, history, k=4, per_item=2)
    titles = model.train_.item_titles()
    attention = model.attention(history)[-1].mean(axis=0)[-1]
    vectors = model.item_embeddings()
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    by_title = {titles[i]: i for i in range(N_ITEMS)}
    assert (table["because of"] != "—").any()
    for row in table.to_dict("records"):
        if row["because of"] == "—":  # no past item points towards it
            continue
        target = unit[by_title[row["title"]]]
        raw = attention * np.clip(unit[history] @ target, 0, None)
        expected = raw / raw.sum()
        named = re.findall(r"(.+?) \((\d+)%\)(?:, |$)", row["because of"])
        assert 1 <= len(named) <= 2
        shares = [int(p) for _, p in named]
        assert shares == sorted(shares, reverse=True) and sum(shares) <= 101
        for title, percent in named:
            position = list(history).index(by_title[title])
            assert int(percent) == round(100 * expected[position])


def test_item_embeddings_have_one_row_per_item(fitted):
    for key in ("sasrec", "gru4rec"):
        vectors = fitted[key].item_embeddings()
        assert vectors.shape == (N_ITEMS, SMALL[key]["embedding_size"])


# ---------------------------------------------------------------------------- data layout


@pytest.mark.parametrize("pad_side", ["left", "right"])
def test_training_windows_hold_every_transition_exactly_once(a_then_b, pad_side):
    users, items = time_ordered(a_then_b)
    pair_user, before, after = next_item_pairs(users, items)
    pad = a_then_b.n_items
    (inputs, targets), row_user = sequence_windows(pair_user, (before, after), 4, pad=pad, pad_side=pad_side,
                                                   n_owners=a_then_b.n_users)
    real = inputs != pad
    np.testing.assert_array_equal(real, targets != pad)
    got = sorted(zip(np.repeat(row_user, real.sum(1)), inputs[real], targets[real]))
    assert got == sorted(zip(pair_user, before, after))
    # the padding of every row sits on one side only
    edge = real[:, -1] if pad_side == "left" else real[:, 0]
    assert edge.all()
    assert (np.diff(real.astype(int), axis=1) >= 0).all() if pad_side == "left" else \
        (np.diff(real.astype(int), axis=1) <= 0).all()


# ---------------------------------------------------------------------------- training kernels


@pytest.mark.parametrize("rows", [1, 5, 700])  # fewer rows than a block, and several blocks
def test_blocked_cross_entropy_equals_torchs_loss_and_gradients(rows):
    generator = torch.Generator().manual_seed(rows)
    h = torch.randn(rows, 8, dtype=torch.float64, generator=generator, requires_grad=True)
    weight = torch.randn(40, 8, dtype=torch.float64, generator=generator, requires_grad=True)
    targets = torch.randint(0, 40, (rows,), generator=generator)
    expected = F.cross_entropy(h @ weight.T, targets)
    expected_grads = torch.autograd.grad(3.0 * expected, (h, weight))
    got = full_softmax_cross_entropy(h, weight, targets)
    got_grads = torch.autograd.grad(3.0 * got, (h, weight))
    assert got.item() == pytest.approx(expected.item(), rel=1e-12)
    for a, b in zip(got_grads, expected_grads):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_blocked_cross_entropy_survives_huge_logits():
    # the max is subtracted before exp: logits of 1e4 neither overflow nor give nan
    h = torch.tensor([[100.0], [-100.0]], requires_grad=True)
    weight = torch.tensor([[100.0], [0.0], [-100.0]], requires_grad=True)
    targets = torch.tensor([0, 1])
    loss = full_softmax_cross_entropy(h, weight, targets)
    loss.backward()
    assert loss.item() == pytest.approx(F.cross_entropy(h @ weight.T, targets).item())
    assert torch.isfinite(h.grad).all() and torch.isfinite(weight.grad).all()


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_byte_dropout_drops_the_rate_asked_and_keeps_the_mean(p):
    torch.manual_seed(0)
    layer = ByteDropout(p)
    x = torch.ones(200_000)
    y = layer(x)
    dropped = (y == 0).float().mean().item()
    assert dropped == pytest.approx(p, abs=0.004)              # p rounded to 1/256, then sampled
    assert y.mean().item() == pytest.approx(1.0, abs=0.01)
    assert torch.unique(y[y != 0]).numel() == 1                 # one scale for every survivor
    layer.eval()
    assert torch.equal(layer(x), x)


def test_byte_dropout_is_reproducible_and_passes_gradients_through_survivors():
    x = torch.randn(3, 50, 7, requires_grad=True)
    torch.manual_seed(1)
    first = ByteDropout(0.3)(x)
    torch.manual_seed(1)
    second = ByteDropout(0.3)(x)
    assert torch.equal(first, second)
    first.sum().backward()
    kept = first.detach() != 0
    assert torch.all(x.grad[~kept] == 0) and torch.allclose(x.grad[kept], torch.tensor(256 / (256 - 77)))


# ---------------------------------------------------------------------------- length-bucketed batches


def test_length_batches_cover_every_nonempty_row_once_with_the_same_steps_and_load():
    rng = np.random.default_rng(0)
    lengths = np.concatenate([np.full(300, 50), rng.integers(0, 50, size=700)])  # long and short rows
    batches = list(length_batches(lengths, 64, np.random.default_rng(1)))
    seen = np.concatenate(batches)
    np.testing.assert_array_equal(np.sort(seen), np.flatnonzero(lengths > 0))  # each real row once, empty ones never
    # about as many steps as random batches of 64 rows, each with about their share of real positions
    rows = int((lengths > 0).sum())
    assert abs(len(batches) - rows / 64) <= 1.5
    load = np.array([lengths[b].sum() for b in batches])
    budget = 64 * lengths[lengths > 0].mean()
    assert (load <= budget + 50).all()  # a batch stops at the first row past its budget
    # rows of one batch have similar lengths, so trimming each batch to its longest row removes padding
    padding = sum(len(b) * lengths[b].max() - lengths[b].sum() for b in batches)
    random_padding = sum(len(b) * lengths[b].max() - lengths[b].sum()
                         for b in np.array_split(np.random.default_rng(2).permutation(np.flatnonzero(lengths > 0)),
                                                 len(batches)))
    assert padding < 0.25 * random_padding  # measured 0.20
    # another seed gives another order and other batches of equal-length rows
    again = list(length_batches(lengths, 64, np.random.default_rng(3)))
    assert [b.tolist() for b in again] != [b.tolist() for b in batches]


@pytest.mark.parametrize("key", ["sasrec", "gru4rec"])
def test_a_window_trimmed_of_its_padding_gives_the_same_hidden_states(key, fitted):
    """Training cuts each batch to its longest row; that is exact only if no real position reads padding
    and SASRec's trimmed columns keep their positions (the right end of a full window)."""
    model = fitted[key]
    module, length, pad = model.module_, model.params.max_len, model.module_.pad
    items = torch.tensor([5, 9, 3, 7], dtype=torch.int64)
    full = torch.full((1, length), pad, dtype=torch.int64)
    trimmed = items[None]
    if model.pad_side == "left":
        full[0, -len(items):] = items
    else:
        full[0, :len(items)] = items
    with torch.no_grad():
        out_full, out_trimmed = module(full), module(trimmed)
    if key == "sasrec":
        out_full, out_trimmed = out_full[0], out_trimmed[0]
    real = slice(length - len(items), length) if model.pad_side == "left" else slice(0, len(items))
    torch.testing.assert_close(out_trimmed[0], out_full[0, real], rtol=1e-5, atol=1e-5)

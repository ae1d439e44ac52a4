"""Factorization models and the shared torch loop, checked against closed forms and brute force."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from recsys.data import Dataset
from recsys.data.errors import DataError
from recsys.data.split import random_holdout
from recsys.evaluation import evaluate
from recsys.evaluation.validation import validation_ndcg
from recsys.models import create
from recsys.models.base import FitCancelled, StopTraining
from recsys.models.factorization import (
    BPRMF,
    _Adam,
    _batched_cholesky_solve,
    _Cells,
    _conjugate_gradient,
    _NegativeDraws,
    alias_table,
)
from recsys.models.training import NegativeSampler, minibatches


def low_rank_log(n_users=60, n_items=40, rank=3, density=0.35, seed=0, explicit=True) -> Dataset:
    """Ratings from a rank-3 model plus noise, observed at random cells."""
    rng = np.random.default_rng(seed)
    users, items = rng.normal(size=(n_users, rank)), rng.normal(size=(n_items, rank))
    truth = users @ items.T
    mask = rng.random((n_users, n_items)) < density
    mask[np.arange(n_users), rng.integers(0, n_items, n_users)] = True  # everyone has something
    u, i = np.nonzero(mask)
    ratings = np.clip(np.round(3 + truth[u, i] + rng.normal(scale=0.3, size=len(u))), 1, 5)
    df = pd.DataFrame({"user": u, "item": i, "rating": ratings, "ts": np.arange(len(u))})
    return Dataset.from_frame(df, timestamp="ts", feedback="explicit" if explicit else "implicit")


@pytest.fixture(scope="module")
def log():
    return low_rank_log()


# ---------------------------------------------------------------------------- PureSVD
def test_pure_svd_equals_the_dense_svd_projection(log):
    model = create("pure_svd", embedding_size=5).fit(log)
    x = log.positives.toarray().astype(np.float64)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    v = vt[:5].T
    np.testing.assert_allclose(model.score(np.arange(log.n_users)), x @ v @ v.T, atol=1e-4)
    np.testing.assert_allclose(model.singular_values_, np.linalg.svd(x, compute_uv=False)[:5], rtol=1e-5)


def test_pure_svd_fold_in_is_exact(log):
    model = create("pure_svd", embedding_size=5).fit(log)
    for user in (0, 7, 33):
        np.testing.assert_allclose(model.score_history(log.positives[user].indices), model.score([user])[0],
                                   atol=1e-5)


def test_pure_svd_keeps_the_rank_low_on_tiny_data(log):
    model = create("pure_svd", embedding_size=500).fit(log)
    assert model.factors_ == min(log.n_users, log.n_items) // 4


# ---------------------------------------------------------------------------- iALS
@pytest.mark.parametrize("solver", ["cg", "cholesky"])
def test_ials_loss_never_increases(log, solver):
    model = create("ials", embedding_size=8, reg=1.0, alpha=4.0, iterations=12, solver=solver).fit(log)
    losses = np.array(model.loss_history_)
    assert len(losses) == 12
    assert np.all(np.diff(losses) <= 1e-6 * losses[:-1]), losses
    assert losses[-1] < losses[0]


def test_ials_loss_matches_the_brute_force_sum(log):
    model = create("ials", embedding_size=4, iterations=2).fit(log)
    x = log.positives.toarray()
    scores = model.user_factors_.astype(np.float64) @ model.item_factors_.T.astype(np.float64)
    confidence = 1 + model.params.alpha * x
    brute = np.sum(confidence * (x - scores) ** 2) + model.params.reg * (
        np.sum(model.user_factors_.astype(np.float64) ** 2) + np.sum(model.item_factors_.astype(np.float64) ** 2))
    assert model._loss(log.positives, model.user_factors_, model.item_factors_) == pytest.approx(brute, rel=1e-6)


def test_batched_cholesky_and_many_cg_steps_solve_each_row_exactly(log):
    rng = np.random.default_rng(3)
    x = log.positives.tocsr().astype(np.float64)
    fixed = rng.normal(size=(log.n_items, 6))
    alpha, reg = 3.0, 0.5
    gram = fixed.T @ fixed + reg * np.eye(6)
    rhs = (1 + alpha) * (x @ fixed)
    reference = np.stack([
        np.linalg.solve(gram + alpha * fixed[x[u].indices].T @ fixed[x[u].indices], rhs[u]) for u in range(x.shape[0])
    ])
    np.testing.assert_allclose(_batched_cholesky_solve(x, fixed, gram, rhs, alpha, rows_per_chunk=7), reference,
                               rtol=1e-8, atol=1e-10)
    as_torch = torch.from_numpy
    cg = _conjugate_gradient(_Cells(x), as_torch(fixed), as_torch(gram), as_torch(rhs), torch.zeros(rhs.shape,
                             dtype=torch.float64), alpha, steps=30)
    np.testing.assert_allclose(cg.numpy(), reference, rtol=1e-6, atol=1e-8)


def test_ials_fold_in_matches_training_users(log):
    model = create("ials", embedding_size=8, iterations=30, solver="cholesky").fit(log)
    for user in range(0, log.n_users, 9):
        folded = model.score_history(log.positives[user].indices)
        assert np.corrcoef(folded, model.score([user])[0])[0, 1] > 0.99


# ---------------------------------------------------------------------------- torch loop
def test_negative_sampler_never_returns_a_consumed_item(log):
    sampler = NegativeSampler(log)
    users = np.repeat(np.arange(log.n_users), 20)
    negatives = sampler.sample(users, np.random.default_rng(0), per_user=3)
    consumed = log.positives.toarray().astype(bool)
    assert negatives.shape == (len(users), 3)
    assert not consumed[np.repeat(users, 3), negatives.ravel()].any()


def test_popularity_sampling_prefers_popular_items(log):
    sampler = NegativeSampler(log, popularity_power=1.0)
    draws = sampler._draw(200_000, np.random.default_rng(1))
    popularity = np.asarray(log.positives.sum(axis=0)).ravel()
    frequency = np.bincount(draws, minlength=log.n_items) / len(draws)
    np.testing.assert_allclose(frequency, popularity / popularity.sum(), atol=0.004)


def test_minibatches_cover_everything_once_and_keep_enough_steps_on_small_data():
    batches = list(minibatches(100, 1024, np.random.default_rng(0)))
    assert len(batches) >= 8
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(100))


def test_stop_training_keeps_the_model_after_that_epoch(log):
    def stop_after_three(step, total, metrics):
        if step == 3:
            raise StopTraining

    model = create("bpr_mf", epochs=50).fit(log, progress=stop_after_three)
    assert model.epochs_run_ == 3 and model.stopped_early
    assert len([h for h in model.history_ if "loss" in h]) == 3
    assert model.recommend([0], k=5)[0].shape == (1, 5)


def test_ials_runs_through_the_shared_epoch_loop(log):
    """iALS sweeps are epochs of the same loop as the torch models: a stop request keeps the model."""
    def stop_after_two(step, total, metrics):
        if step == 2 and metrics:
            raise StopTraining

    model = create("ials", embedding_size=4, iterations=10).fit(log, progress=stop_after_two)
    assert model.epochs_run_ == 2 and model.stopped_early and len(model.loss_history_) == 2
    assert [h["step"] for h in model.history_] == [1, 2]
    full = create("ials", embedding_size=4, iterations=2).fit(log)
    np.testing.assert_array_equal(model.score([0, 1]), full.score([0, 1]))
    assert not full.stopped_early and not create("ease").fit(log).stopped_early


def test_ials_keeps_its_best_validation_sweep():
    ds = low_rank_log(n_users=120, n_items=60, density=0.3, explicit=False)
    train, valid = random_holdout(ds, 0.2, seed=0)
    model = create("ials", embedding_size=16, reg=0.01, iterations=12).fit(train, valid=valid)
    vals = [h["val_ndcg@10"] for h in model.history_ if "val_ndcg@10" in h]
    assert len(vals) == 12 and model.best_epoch_ == int(np.argmax(vals)) + 1
    assert validation_ndcg(model._score, train, valid) == pytest.approx(max(vals), abs=1e-9)


def test_stop_on_a_model_without_epochs_cancels(log):
    def stop(step, total, metrics):
        raise StopTraining

    with pytest.raises(FitCancelled):
        create("ease").fit(log, progress=stop)


def test_early_stopping_restores_the_best_validation_epoch():
    ds = low_rank_log(n_users=120, n_items=60, density=0.3, explicit=False)
    train, valid = random_holdout(ds, 0.2, seed=0)
    model = create("bpr_mf", epochs=40, patience=2, lr=0.05).fit(train, valid=valid)
    vals = [h["val_ndcg@10"] for h in model.history_ if "val_ndcg@10" in h]
    assert model.best_epoch_ == int(np.argmax(vals)) + 1
    assert len(vals) <= model.best_epoch_ + 2
    restored = validation_ndcg(model._score, train, valid)
    assert restored == pytest.approx(max(vals), abs=1e-9)


def test_bpr_loss_goes_down(log):
    model = create("bpr_mf", epochs=15).fit(log)
    losses = [h["loss"] for h in model.history_]
    assert losses[-1] < 0.6 * losses[0]


def _bpr_ready(log, **params) -> BPRMF:
    """A BPR-MF with its tables built and trained a little, as mid-fit."""
    model = create("bpr_mf", embedding_size=6, epochs=3, **params).fit(log)
    model.optimizer_ = _Adam(model.module_.parameters(), lr=0.0)
    return model


class _Recorder:
    """Stands in for the optimizer: keeps the gradients a step set, changes nothing."""

    def step(self):
        self.steps = getattr(self, "steps", 0) + 1


def test_bpr_gradient_equals_autograd_of_its_loss(log):
    model = _bpr_ready(log, reg=0.05)
    m = model.module_
    rng = np.random.default_rng(4)
    users = torch.as_tensor(rng.integers(0, log.n_users, 64))
    items = torch.as_tensor(rng.integers(0, log.n_items, 64))                # repeats: rows are summed
    negatives = torch.as_tensor(rng.integers(0, log.n_items, 64))
    summed = model._step(users, items, negatives[:, None], _Recorder())
    manual = [p.grad.clone() for p in m.parameters()]
    for p in m.parameters():
        p.grad = None
    diff = m(users, items) - m(users, negatives)
    loss = -torch.nn.functional.logsigmoid(diff).mean() + 0.05 * m.squared_norms(users, items, negatives) / 64
    loss.backward()
    for got, p in zip(manual, m.parameters()):
        torch.testing.assert_close(got, p.grad, rtol=1e-5, atol=1e-7)
    assert summed / 64 == pytest.approx(loss.item(), rel=1e-5)


def test_bpr_trains_against_the_candidate_it_scores_highest(log):
    model = _bpr_ready(log)
    users = torch.arange(10)
    candidates = torch.as_tensor(np.random.default_rng(0).integers(0, log.n_items, (10, 4)))
    scores = model.module_(users, candidates).detach()
    expected = candidates[torch.arange(10), scores.argmax(1)]
    with torch.no_grad():  # as in a training step
        picked = model._hardest(model.module_.user.weight[:10], candidates, model.module_.item.weight,
                                model.module_.item_bias.weight[:, 0])
    torch.testing.assert_close(picked, expected)


def test_bpr_variants_learn_and_forget_their_training_state(log):
    train, test = random_holdout(log, 0.2, seed=0)
    popularity = evaluate(create("pop").fit(train), train, test, k=[10], bootstrap=0).means["ndcg@10"]
    for params in ({}, {"negatives": "uniform", "negative_candidates": 1, "lr_decay": 1.0}):
        model = create("bpr_mf", embedding_size=8, **params).fit(train)
        assert evaluate(model, train, test, k=[10], bootstrap=0).means["ndcg@10"] > popularity, params
        assert not hasattr(model, "optimizer_")
        assert all(p.grad is None for p in model.module_.parameters())


def test_adam_matches_torch_adam():
    start = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    ours, theirs = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    mine, reference = _Adam([ours], lr=0.1, weight_decay=0.01), torch.optim.Adam([theirs], lr=0.1, weight_decay=0.01)
    for step in range(6):
        grad = torch.sin(start * (step + 1))
        ours.grad, theirs.grad = grad.clone(), grad.clone()
        mine.step()
        reference.step()
    torch.testing.assert_close(ours.detach(), theirs.detach(), rtol=1e-6, atol=1e-7)


def test_alias_table_gives_exactly_the_distribution():
    probabilities = np.random.default_rng(2).random(40) ** 3
    probabilities /= probabilities.sum()
    keep, alias = alias_table(probabilities)
    implied = keep / len(keep)
    np.add.at(implied, alias, (1 - keep) / len(keep))
    np.testing.assert_allclose(implied, probabilities, atol=1e-12)


@pytest.mark.parametrize("bitmap_cells", [0, 1 << 25])
def test_fast_negative_draws_follow_popularity_and_skip_consumed_items(log, bitmap_cells, monkeypatch):
    monkeypatch.setattr(_NegativeDraws, "BITMAP_CELLS", bitmap_cells)   # 0: the binary-search membership test
    sampler = _NegativeDraws(log, popularity_power=1.0)
    assert (sampler._bitmap is None) == (bitmap_cells == 0)
    users = np.repeat(np.arange(log.n_users), 50)
    negatives = sampler.sample(users, np.random.default_rng(0), per_user=2)
    assert not log.positives.toarray().astype(bool)[np.repeat(users, 2), negatives.ravel()].any()
    draws = sampler._draw(200_000, np.random.default_rng(1))
    popularity = np.asarray(log.positives.sum(axis=0)).ravel()
    np.testing.assert_allclose(np.bincount(draws, minlength=log.n_items) / len(draws),
                               popularity / popularity.sum(), atol=0.004)


def test_validation_ndcg_equals_the_evaluator(log):
    train, valid = random_holdout(log, 0.25, seed=1)
    model = create("item_knn").fit(train)
    report = evaluate(model, train, valid, k=[10], bootstrap=0)
    assert validation_ndcg(model.score, train, valid) == pytest.approx(report.means["ndcg@10"], abs=1e-12)


# ---------------------------------------------------------------------------- biased MF
def test_mf_sgd_learns_a_low_rank_rating_matrix(log):
    train, test = random_holdout(log, 0.2, seed=0)
    model = create("mf_sgd", embedding_size=8, epochs=200, init_std=0.1, average_last=0).fit(train)
    rmse = np.sqrt(np.mean((model.predict(test.user, test.item) - test.rating) ** 2))
    baseline = np.sqrt(np.mean((train.rating.mean() - test.rating) ** 2))
    assert rmse < 0.8 * baseline, (rmse, baseline)


def test_mf_sgd_without_presence_head_scores_are_its_predictions(log):
    model = create("mf_sgd", embedding_size=4, epochs=3, presence_embedding_size=0).fit(log)
    users = np.array([0, 3, 9])
    scores = model.score(users)
    items = np.arange(log.n_items)
    for row, user in enumerate(users):
        raw = model.module_(*(torch.as_tensor(a) for a in (np.full(log.n_items, user), items)))
        np.testing.assert_allclose(scores[row], raw.detach().numpy(), rtol=1e-5, atol=1e-5)
    # one inner product (μ + b_u and b_i as two more dimensions): the factorization base scores it
    user_vectors, item_vectors = model.inner_product_embeddings()
    np.testing.assert_allclose(user_vectors[users] @ item_vectors.T, scores, rtol=1e-5, atol=1e-5)
    candidates = np.array([[1, 4, -1], [0, 2, 3], [5, 5, 6]])
    np.testing.assert_allclose(model.score_candidates(users, candidates)[:, :2],
                               np.take_along_axis(scores, candidates[:, :2], axis=1), rtol=1e-6)


def test_mf_sgd_presence_head_leaves_rating_predictions_untouched(log):
    """The presence head has its own parameters and its own negative-sampling stream, so
    the rating half (and its RMSE) is bit-identical with the head on or off."""
    with_head = create("mf_sgd", embedding_size=4, epochs=4).fit(log)
    plain = create("mf_sgd", embedding_size=4, epochs=4, presence_embedding_size=0).fit(log)
    users, items = np.repeat(np.arange(log.n_users), 3), np.tile(np.arange(3), log.n_users)
    np.testing.assert_array_equal(with_head.predict(users, items), plain.predict(users, items))
    assert with_head.ranks_by_predicted_rating is False and plain.ranks_by_predicted_rating is True


def test_mf_sgd_ranks_by_presence_times_clipped_rating(log):
    model = create("mf_sgd", embedding_size=4, epochs=3).fit(log)
    users = np.array([0, 5])
    items = np.arange(log.n_items)
    m = model.module_
    for row, user in zip(model.score(users), users):
        u, i = torch.full((log.n_items,), int(user)), torch.as_tensor(items)
        presence = torch.sigmoid(m.presence(u, i)).detach().numpy()
        rating = np.clip(m(u, i).detach().numpy(), *model.rating_range_)
        np.testing.assert_allclose(row, presence * rating, rtol=1e-5, atol=1e-6)
        assert (row >= 0).all() and (row <= model.rating_range_[1]).all()


def _mf_sgd_reference_loss(model, users, items, third, negatives=None) -> torch.Tensor:
    """mf_sgd's objective written the plain way: a forward pass per set of cells and the classic
    per-example L2 of every row read (the model writes out its gradient, reading each table once)."""
    m, p = model.module_, model.params
    bce = torch.nn.functional.binary_cross_entropy_with_logits

    def l2(users, *item_sets):
        vectors = m.user(users).pow(2).sum() + sum(m.item(i).pow(2).sum() for i in item_sets)
        biases = m.user_bias(users).pow(2).sum() + sum(m.item_bias(i).pow(2).sum() for i in item_sets)
        return (p.reg * vectors + p.bias_reg * biases) / len(users)

    def against_sampled(score, users, items, sampled):
        pos, neg = score(users, items), score(users[:, None].expand_as(sampled).reshape(-1), sampled.reshape(-1))
        return bce(pos, torch.ones_like(pos)) + sampled.shape[1] * bce(neg, torch.zeros_like(neg))

    if p.loss == "mse":
        loss = ((m(users, items) - third) ** 2).mean() + l2(users, items)
        if negatives is not None:
            head = m.presence
            loss = loss + against_sampled(head, users, items, negatives) + p.reg * (
                head.user(users).pow(2).sum() + head.item(items).pow(2).sum()) / len(users)
        return loss
    if p.loss == "bpr":
        return -torch.nn.functional.logsigmoid(m(users, items) - m(users, third)).mean() + l2(users, items, third)
    return against_sampled(m, users, items, third) + l2(users, items)


@pytest.mark.parametrize("loss", ["mse", "bpr", "bce"])
def test_an_mf_sgd_step_is_plain_sgd_along_autograds_gradient_of_the_objective(log, loss):
    """Training writes its gradients out and updates only the rows a batch read; that must be the same
    move as plain SGD along autograd's gradient of the objective written the plain way."""
    data = log if loss == "mse" else low_rank_log(explicit=False)
    model = create("mf_sgd", loss=loss, embedding_size=6, presence_embedding_size=3, epochs=1, init_std=0.3).fit(data)
    rng = np.random.default_rng(0)
    users, items = (torch.as_tensor(rng.integers(0, n, size=32)) for n in (data.n_users, data.n_items))
    users[:4] = users[4]  # a repeated user: its gradient rows must add up
    shape = (32,) if loss == "bpr" else (32, 3)
    third = torch.as_tensor(rng.normal(3.0, 1.0, size=32), dtype=torch.float32) if loss == "mse" \
        else torch.as_tensor(rng.integers(0, data.n_items, size=shape))
    negatives = torch.as_tensor(rng.integers(0, data.n_items, size=(32, 3))) if loss == "mse" else None
    batch = (users, items, third, negatives) if loss == "mse" else (users, items, third)

    model.module_.zero_grad(set_to_none=True)
    objective = _mf_sgd_reference_loss(model, users, items, third, negatives)
    objective.backward()
    grads = {name: w.grad for name, w in model.module_.named_parameters() if w.grad is not None}
    assert len(grads) >= 4
    before = {name: w.detach().clone() for name, w in model.module_.named_parameters()}
    rates = {}
    for group in model.optimizer_.param_groups:
        group["lr"] = 0.37 * (1 + len(rates))  # two heads, two step sizes
        rates.update({id(w): group["lr"] for w in group["params"]})
    with torch.no_grad():
        reported = model._sgd_step(batch)
    assert reported == pytest.approx(objective.item(), rel=1e-5)
    for name, w in model.module_.named_parameters():
        expected = before[name] - rates[id(w)] * grads.get(name, torch.zeros_like(w))
        torch.testing.assert_close(w.detach(), expected, rtol=1e-4, atol=1e-6)
        changed = (w.detach() != before[name]).any(dim=-1) if w.dim() > 1 else w.detach() != before[name]
        if name.endswith(("user.weight", "user_bias.weight")):
            assert set(torch.nonzero(changed).flatten().tolist()) <= set(users.tolist())  # only the rows read move


def test_mf_sgd_losses_for_implicit_data_and_their_limits():
    implicit = low_rank_log(explicit=False)
    with pytest.raises(DataError, match="loss='bce' or loss='bpr'"):
        create("mf_sgd").fit(implicit)
    for loss in ("bce", "bpr"):
        model = create("mf_sgd", loss=loss, epochs=5).fit(implicit)
        assert np.isfinite(model.score([0])).all()
        with pytest.raises(DataError, match="only when trained with loss='mse'"):
            model.predict([0], [1])


def test_embeddings_and_similar_items_come_from_the_factors(log):
    model = create("bpr_mf", epochs=2).fit(log)
    items = model.item_embeddings()
    assert items.shape == (log.n_items, model.params.embedding_size)
    neighbours, sims = model.similar_items(5, k=4)
    unit = items / np.linalg.norm(items, axis=1, keepdims=True)
    brute = unit @ unit[5]
    brute[5] = -np.inf
    np.testing.assert_array_equal(neighbours, np.argsort(-brute, kind="stable")[:4])
    np.testing.assert_allclose(sims, np.sort(brute)[::-1][:4], rtol=1e-5)


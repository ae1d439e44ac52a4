"""AutoRec, CDAE and Mult-VAE: masked rating training, fold-in, KL annealing, learning, batched scoring."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from recsys.data import Dataset
from recsys.models import autoencoders, create

# tiny data gets 8 steps per epoch, so a larger learning rate than on MovieLens
SMALL = {"embedding_size": 16, "epochs": 30, "lr": 1e-2}
SMALL_VAE = {"hidden": 16, "embedding_size": 8, "epochs": 30, "lr": 1e-2}


def _taste_groups(seed: int = 0, n_users: int = 48, n_items: int = 30, groups: int = 3) -> Dataset:
    """Each user mostly consumes the items of their group, with a few strays; explicit 1-5 ratings."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(n_users):
        group = user % groups
        for item in range(n_items):
            in_group = item % groups == group
            if rng.random() < (0.6 if in_group else 0.08):
                rows.append((user, item, float(rng.integers(4, 6) if in_group else rng.integers(1, 3))))
    return Dataset.from_frame(pd.DataFrame(rows, columns=["user", "item", "rating"]))


@pytest.fixture(scope="module")
def data():
    return _taste_groups()


@pytest.fixture(scope="module")
def vae(data):
    return create("mult_vae", **SMALL_VAE).fit(data)


@pytest.fixture(scope="module")
def cdae(data):
    return create("cdae", **SMALL).fit(data)


@pytest.fixture(scope="module")
def autorec(data):
    return create("autorec", embedding_size=16, epochs=40, lr=1e-2, reg=1.0).fit(data)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _weights(layer: torch.nn.Module) -> tuple[np.ndarray, np.ndarray]:
    return layer.weight.detach().numpy().astype(np.float64), layer.bias.detach().numpy().astype(np.float64)


# ---------------------------------------------------------------------- AutoRec
def test_autorec_learns_ratings_from_observed_cells_only(autorec, data):
    pred = autorec.predict(data.user, data.item)
    rmse = np.sqrt(np.mean((pred - data.rating) ** 2))
    global_mean = np.sqrt(np.mean((data.rating - data.rating.mean()) ** 2))
    # a loss over every cell would pull ratings towards the zeros of the unrated cells
    assert abs(pred.mean() - data.rating.mean()) < 0.3
    assert rmse < 0.6 * global_mean, f"train RMSE {rmse:.3f} vs global mean {global_mean:.3f}"
    assert pred.min() >= 1.0 and pred.max() <= 5.0


def test_autorec_rating_loss_is_the_squared_error_of_rated_cells_plus_l2(data):
    model = create("autorec", **SMALL, presence_weight=0.0)
    torch.manual_seed(0)
    model.device_ = torch.device("cpu")
    model._prepare(data)
    model.module_ = model._build(data)
    loss = model._loss((torch.arange(data.n_items),)).item()   # one batch of every item
    ratings = model.ratings_.dense.clone()
    observed = model.observed_.dense.bool()
    with torch.no_grad():
        code = model.module_.encode(ratings)
        out = model.module_.rating(code)
    sse = ((out - ratings) ** 2)[observed].sum()
    weights = sum(layer.weight.pow(2).sum() for layer in (model.module_.encoder, model.module_.rating))
    expected = (sse + 0.5 * model.params.reg * weights) / data.n_interactions
    assert loss == pytest.approx(expected.item(), rel=1e-5)


def test_autorec_l2_as_adam_weight_decay_takes_the_steps_of_the_explicit_penalty(data):
    model = create("autorec", **SMALL)
    torch.manual_seed(0)
    model.device_ = torch.device("cpu")
    model._prepare(data)
    model.module_ = model._build(data)
    reference = copy.deepcopy(model.module_)
    fast = model._optimizer()
    slow = torch.optim.Adam(reference.parameters(), lr=model.params.lr)
    batches = torch.arange(data.n_items).split(7)
    for batch in batches:                      # Adam's first step is lr * sign(gradient); later ones are not
        fast.zero_grad()
        model._loss((batch,)).backward()
        fast.step()
    model.module_, trained = reference, model.module_
    for batch in batches:
        slow.zero_grad()
        penalty = sum(layer.weight.pow(2).sum() for layer in (reference.encoder, reference.rating, reference.presence))
        (model._loss((batch,)) + 0.5 * model.params.reg * penalty / data.n_interactions).backward()
        slow.step()
    for name, weight in trained.state_dict().items():
        np.testing.assert_allclose(weight.numpy(), reference.state_dict()[name].numpy(), rtol=1e-4, atol=1e-6,
                                   err_msg=name)
    assert not torch.equal(trained.encoder.weight, model._build(data).encoder.weight)  # it did train


def test_stored_cell_dropout_drops_and_rescales_only_stored_cells():
    torch.manual_seed(0)
    x = (torch.rand(200, 300) < 0.1).float() * torch.rand(200, 300)
    drop = autoencoders.StoredCellDropout(0.3)
    out = drop(x)
    stored = x != 0
    assert torch.all(out[~stored] == 0)
    kept = out[stored] != 0
    torch.testing.assert_close(out[stored][kept], x[stored][kept] / 0.7)
    assert kept.float().mean().item() == pytest.approx(0.7, abs=0.02)   # about 6,000 stored cells
    assert torch.equal(drop.eval()(x), x)


def test_autorec_vectorised_scores_match_a_per_user_reference(autorec, data):
    net = autorec.module_
    w_enc, b_enc = _weights(net.encoder)
    w_rat, b_rat = _weights(net.rating)
    w_pre, b_pre = _weights(net.presence)
    codes = _sigmoid(data.csr.T.toarray() @ w_enc.T + b_enc)          # (I, h)
    low, high = data.rating.min(), data.rating.max()
    scores = autorec.score(np.arange(data.n_users))
    for user in range(data.n_users):
        rating = codes @ w_rat[user] + b_rat[user]
        expected = _sigmoid(codes @ w_pre[user] + b_pre[user]) * np.clip(rating, low, high)
        np.testing.assert_allclose(scores[user], expected, rtol=1e-4, atol=1e-5)
    users, items = np.array([3, 3, 17]), np.array([0, 5, 9])
    direct = np.clip((codes[items] * w_rat[users]).sum(1) + b_rat[users], low, high)
    np.testing.assert_allclose(autorec.predict(users, items), direct, rtol=1e-5)


def test_autorec_without_presence_ranks_by_predicted_rating(data):
    model = create("autorec", **SMALL, presence_weight=0.0).fit(data)
    everything = np.repeat(np.arange(data.n_users), data.n_items), np.tile(np.arange(data.n_items), data.n_users)
    unclipped = model.score(np.arange(data.n_users)).ravel()
    np.testing.assert_allclose(np.clip(unclipped, 1, 5), model.predict(*everything), rtol=1e-5)


def test_autorec_refuses_implicit_feedback():
    from recsys.data.errors import DataError

    ds = Dataset.from_frame(pd.DataFrame({"user": [0, 0, 1, 1, 2], "item": [0, 1, 1, 2, 0]}), rating=None)
    with pytest.raises(DataError, match="explicit"):
        create("autorec").fit(ds)


# ---------------------------------------------------------------------- CDAE
def test_cdae_vectorised_scores_match_a_per_user_reference(cdae, data):
    net = cdae.module_
    w_enc, b_enc = _weights(net.encoder)
    w_dec, b_dec = _weights(net.decoder)
    user_vectors = net.user.weight.detach().numpy()
    history = data.positives.toarray()
    scores = cdae.score(np.arange(data.n_users))
    for user in range(data.n_users):
        code = _sigmoid(w_enc @ history[user] + b_enc + user_vectors[user])
        np.testing.assert_allclose(scores[user], w_dec @ code + b_dec, rtol=1e-4, atol=1e-5)


def test_cdae_embeddings_reproduce_its_scores(cdae, data):
    items, users = cdae.item_embeddings(), cdae.user_embeddings()
    assert items.shape == (data.n_items, 16) and users.shape == (data.n_users, 16)
    bias = cdae.module_.decoder.bias.detach().numpy()
    np.testing.assert_allclose(users @ items.T + bias, cdae.score(np.arange(data.n_users)), rtol=1e-4, atol=1e-5)


def test_cdae_starts_from_each_items_base_rate(data):
    model = create("cdae", **SMALL)
    model.device_ = torch.device("cpu")
    net = model._build(data)
    share = np.asarray(data.positives.sum(axis=0)).ravel() / data.n_users
    np.testing.assert_allclose(_sigmoid(net.decoder.bias.detach().numpy()), share, atol=1e-5)


def test_cdae_recommends_the_users_group(cdae, data):
    items, _ = cdae.recommend(np.arange(data.n_users), k=3)
    same_group = (items % 3) == (np.arange(data.n_users)[:, None] % 3)
    assert same_group.mean() > 0.75  # popularity would give about 1/3


# ---------------------------------------------------------------------- Mult-VAE
def test_mult_vae_fold_in_equals_scoring_the_user(vae, data):
    for user in (0, 7, 31):
        own_items = data.positives[user].indices
        np.testing.assert_allclose(vae.score_history(own_items), vae.score([user])[0], rtol=1e-5, atol=1e-6)


def test_mult_vae_fold_in_of_a_new_person_follows_their_items(vae, data):
    group_items = np.arange(1, data.n_items, 3)[:4]         # four items of group 1
    scores = vae.score_history(group_items)
    scores[group_items] = -np.inf
    top = np.argsort(-scores)[:3]
    assert (top % 3 == 1).all()


def test_mult_vae_vectorised_scores_match_a_per_user_reference(vae, data):
    net = vae.module_
    w_enc, b_enc = _weights(net.encoder)
    w_post, b_post = _weights(net.to_posterior)
    w_dh, b_dh = _weights(net.decoder_hidden)
    w_dec, b_dec = _weights(net.decoder)
    history = data.positives.toarray()
    scores = vae.score(np.arange(data.n_users))
    latent = SMALL_VAE["embedding_size"]
    for user in range(data.n_users):
        x = history[user] / np.linalg.norm(history[user])
        mu = (w_post @ np.tanh(w_enc @ x + b_enc) + b_post)[:latent]   # the mean, no sampling
        np.testing.assert_allclose(scores[user], w_dec @ np.tanh(w_dh @ mu + b_dh) + b_dec, rtol=1e-4, atol=1e-5)


def test_kl_weight_grows_linearly_to_beta_then_stays():
    model = create("mult_vae", beta=0.4, anneal_steps=10)
    assert [model.kl_weight(s) for s in (0, 1, 5, 10, 11, 1000)] == pytest.approx([0.0, 0.04, 0.2, 0.4, 0.4, 0.4])
    assert create("mult_vae", beta=0.3, anneal_steps=0).kl_weight(0) == pytest.approx(0.3)


def test_kl_weight_follows_the_gradient_steps_of_a_fit(data):
    # 48 users in batches of 6 (at least 8 steps per epoch): steps 0..7, 8..15, 16..23
    model = create("mult_vae", **{**SMALL_VAE, "epochs": 3}, batch_size=6, beta=0.3, anneal_steps=16)
    used = []
    model.fit(data, progress=lambda step, total, metrics: used.append(model.last_kl_weight_))
    assert model.steps_ == 24
    assert used == pytest.approx([0.3 * 7 / 16, 0.3 * 15 / 16, 0.3])


# ---------------------------------------------------------------------- all three
# Mult-VAE with a fixed KL weight: while it anneals, the objective itself changes from epoch to epoch
@pytest.mark.parametrize("key, params", [("autorec", SMALL), ("cdae", SMALL),
                                         ("mult_vae", {**SMALL_VAE, "anneal_steps": 0})])
def test_loss_decreases_over_epochs(key, params, data):
    model = create(key, **params).fit(data)
    losses = [h["loss"] for h in model.history_]
    assert len(losses) == params["epochs"]
    assert np.mean(losses[-3:]) < 0.95 * np.mean(losses[:3]), losses  # flat (±1%) when nothing is learned


@pytest.mark.parametrize("key, params", [("autorec", SMALL), ("cdae", SMALL), ("mult_vae", SMALL_VAE)])
def test_sparse_row_store_gives_the_dense_scores(key, params, data, monkeypatch):
    dense = create(key, **params).fit(data).score(np.arange(data.n_users))
    monkeypatch.setattr(autoencoders, "DENSE_CELLS", 0)
    model = create(key, **params).fit(data)
    store = model.ratings_ if key == "autorec" else model.history_rows_
    assert store.dense is None
    np.testing.assert_allclose(model.score(np.arange(data.n_users)), dense, rtol=1e-5, atol=1e-6)

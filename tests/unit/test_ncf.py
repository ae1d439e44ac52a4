"""NCF (GMF, MLP, NeuMF): training pairs, all-item scoring, pretraining, staged progress, learning."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from recsys.data import Dataset
from recsys.models import create, ncf
from recsys.models.base import StopTraining

SMALL = {
    "ncf_gmf": {"embedding_size": 8, "epochs": 10, "lr": 1e-2},
    "ncf_mlp": {"mlp_factors": 8, "layers": 2, "dropout": 0.3, "epochs": 10, "lr": 1e-2},
    "neumf": {"embedding_size": 8, "mlp_factors": 8, "layers": 2, "dropout": 0.3, "epochs": 10, "lr": 1e-2},
}
GROUPS = 3


def _taste_groups(seed: int = 0, n_users: int = 48, n_items: int = 30) -> Dataset:
    """User u mostly consumes items of group u % 3, with a few strays."""
    rng = np.random.default_rng(seed)
    rows = [(user, item) for user in range(n_users) for item in range(n_items)
            if rng.random() < (0.6 if item % GROUPS == user % GROUPS else 0.05)]
    return Dataset.from_frame(pd.DataFrame(rows, columns=["user", "item"]))


@pytest.fixture(scope="module")
def data():
    return _taste_groups()


@pytest.fixture(scope="module")
def fitted(data):
    return {key: create(key, **params).fit(data) for key, params in SMALL.items()}


def _losses(model, name: str = "loss") -> list[float]:
    return [row[name] for row in model.history_ if name in row]


def _logits(net: torch.nn.Module, users: np.ndarray, n_items: int) -> np.ndarray:
    """Brute force: the network's forward pass on one (user, item) pair at a time."""
    out = np.zeros((len(users), n_items), dtype=np.float32)
    with torch.no_grad():
        for row, user in enumerate(users):
            for item in range(n_items):
                out[row, item] = net(torch.tensor([user]), torch.tensor([item])).item()
    return out


def test_each_epoch_has_every_positive_once_and_fresh_unconsumed_negatives(data):
    model = create("ncf_gmf", embedding_size=4, negatives=3, epochs=1).fit(data)
    rng = np.random.default_rng(0)
    users, items, labels = (np.concatenate(part) for part in zip(*model._batches(data, rng)))
    consumed = data.positives.toarray().astype(bool)
    positive = labels == 1
    assert positive.sum() == data.positives.nnz
    assert len(set(zip(users[positive], items[positive]))) == data.positives.nnz   # each pair once
    assert consumed[users[positive], items[positive]].all()
    assert (~positive).sum() == 3 * data.positives.nnz
    assert not consumed[users[~positive], items[~positive]].any()
    # the negatives are redrawn each epoch
    _, again, labels_again = (np.concatenate(part) for part in zip(*model._batches(data, rng)))
    assert not np.array_equal(np.sort(items[~positive]), np.sort(again[labels_again == 0]))


@pytest.mark.parametrize("key", sorted(SMALL))
def test_all_item_scores_equal_the_forward_pass_on_each_pair(key, fitted, data, monkeypatch):
    model = fitted[key]
    users = np.array([0, 7, 13, 47])
    # a tiny budget forces the MLP's all-item broadcast to run in several user chunks
    monkeypatch.setattr(ncf, "MAX_TOWER_CELLS", 2 * data.n_items * 8)
    scores = model.score(users)
    np.testing.assert_allclose(scores, _logits(model.module_, users, data.n_items), rtol=1e-5, atol=1e-5)
    assert scores.std() > 0.1, "a trained model should not score every item alike"


def test_fused_network_starts_as_the_average_of_gmf_and_mlp(fitted, data):
    gmf, mlp = fitted["ncf_gmf"].module_, fitted["ncf_mlp"].module_
    fused = ncf.fuse_pretrained(gmf, mlp, alpha=0.5)
    head = fused.head.weight.detach().numpy()[0]
    np.testing.assert_allclose(head[:8], 0.5 * gmf.head.weight.detach().numpy()[0])
    np.testing.assert_allclose(head[8:], 0.5 * mlp.head.weight.detach().numpy()[0])
    users = np.arange(data.n_users)
    with torch.no_grad():
        logits = fused.eval().score_all(torch.from_numpy(users)).numpy()
    expected = 0.5 * (fitted["ncf_gmf"].score(users) + fitted["ncf_mlp"].score(users))
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)
    # the branches are copies: fine-tuning NeuMF must not change the pretrained models
    with torch.no_grad():
        fused.gmf.user.weight.add_(1.0)
    assert not torch.equal(fused.gmf.user.weight, gmf.gmf.user.weight)


def test_neumf_is_initialised_from_its_own_pretrained_gmf_and_mlp(data):
    params = dict(SMALL["neumf"], pretrain=True, finetune_epochs=1, finetune_lr=1e-5)
    model = create("neumf", **params).fit(data)
    gmf, mlp = model.pretrained_gmf_, model.pretrained_mlp_
    # the branches were trained as the standalone models are, with the same seed and epochs
    users, shared = np.arange(data.n_users), dict(epochs=10, lr=1e-2, reg=model.params.reg)
    alone = create("ncf_gmf", embedding_size=8, **shared).fit(data)
    np.testing.assert_array_equal(gmf.score(users), alone.score(users))
    alone = create("ncf_mlp", mlp_factors=8, layers=2, dropout=0.3, **shared).fit(data)
    np.testing.assert_array_equal(mlp.score(users), alone.score(users))
    # one epoch of Adam at lr 1e-5 moves no weight by more than 8 steps * 1e-5: still the fused ones
    net = model.module_
    expected_head = torch.cat([0.5 * gmf.module_.head.weight, 0.5 * mlp.module_.head.weight], dim=1)
    torch.testing.assert_close(net.head.weight, expected_head, rtol=0, atol=1e-4)
    torch.testing.assert_close(net.gmf.item.weight, gmf.module_.gmf.item.weight, rtol=0, atol=1e-4)
    torch.testing.assert_close(net.mlp.tower[0].weight, mlp.module_.mlp.tower[0].weight, rtol=0, atol=1e-4)
    assert not torch.equal(net.head.weight, expected_head), "fine-tuning should have moved the weights"


@pytest.mark.parametrize("key", sorted(SMALL))
def test_training_loss_goes_down_below_the_class_prior(key, data):
    params = {**SMALL[key], "epochs": 20, "reg": 0.0}
    if key != "ncf_gmf":
        params["dropout"] = 0.0
    if key == "neumf":
        params["pretrain"] = False
    model = create(key, **params).fit(data)
    losses = _losses(model)
    assert len(losses) == 20
    # with 1 positive in 1 + k, predicting the share of positives for every pair scores
    # the entropy of that share: below it, the model tells pairs apart
    share = 1 / (1 + model.params.negatives)
    prior = -(share * np.log(share) + (1 - share) * np.log(1 - share))
    assert losses[-1] < 0.75 * prior, f"{key} learned little beyond the share of positives"
    assert losses[-1] < min(losses[:10])


def test_pretraining_reports_every_stage_on_one_progress_bar(data):
    calls = []
    model = create("neumf", **dict(SMALL["neumf"], epochs=3, finetune_epochs=2)).fit(
        data, progress=lambda step, total, metrics: calls.append((step, total, set(metrics))))
    assert [step for step, _, _ in calls] == list(range(1, 9))
    assert {total for _, total, _ in calls} == {8}
    assert [len(_losses(model, name)) for name in ("gmf_loss", "mlp_loss", "loss")] == [3, 3, 2]
    assert _losses(model, "gmf_loss")[-1] < _losses(model, "gmf_loss")[0]


def test_stop_request_while_pretraining_still_gives_a_complete_neumf(data):
    def stop_at_once(step, total, metrics):
        if metrics:
            raise StopTraining

    model = create("neumf", **SMALL["neumf"]).fit(data, progress=stop_at_once)
    assert [len(_losses(model, name)) for name in ("gmf_loss", "mlp_loss", "loss")] == [1, 1, 1]
    assert np.isfinite(model.score(np.arange(data.n_users))).all()


def test_embeddings_and_similar_items(fitted, data):
    model = fitted["neumf"]
    assert model.user_embeddings().shape == (data.n_users, 8 + 16)    # GMF 8 + MLP embedding 2 * 8
    assert model.item_embeddings().dtype == np.float32
    gmf = fitted["ncf_gmf"]
    np.testing.assert_array_equal(gmf.item_embeddings(), gmf.module_.gmf.item.weight.detach().numpy())
    items, sims = gmf.similar_items(4, k=5)
    assert len(items) == 5 and 4 not in items
    assert (np.diff(sims) <= 1e-6).all()
    assert (items % GROUPS == 4 % GROUPS).sum() >= 4, "neighbours should come from the item's own taste group"


def test_batch_squared_norms_equal_the_indexed_rows_and_their_gradient():
    generator = torch.Generator().manual_seed(0)
    table = torch.randn(12, 4, dtype=torch.float64, generator=generator, requires_grad=True)
    rows = torch.tensor([3, 3, 0, 11, 3, 7])                     # repeats count once per use
    expected = table[rows].pow(2).sum()
    got = ncf.batch_squared_norms(table, rows)
    assert got.item() == pytest.approx(expected.item(), rel=1e-12)
    torch.testing.assert_close(torch.autograd.grad(got, table)[0], torch.autograd.grad(expected, table)[0])
    assert ncf.batch_squared_norms(table, torch.tensor([5])).item() == pytest.approx(table[5].pow(2).sum().item())

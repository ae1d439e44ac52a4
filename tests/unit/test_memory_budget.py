"""Memory estimates before training: every model has one, they grow the way the algorithms do, and a
hosted server refuses a training over its budget with figures and an alternative that fits."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys import hosting
from recsys.data import DataError, Dataset
from recsys.models import get, registry
from recsys.models.base import full_params

REPO_ROOT = Path(__file__).resolve().parents[2]
GB, MB = hosting.GB, hosting.MB
ML_100K = (943, 1682, 80_000)


def _config(training_bytes: int) -> hosting.HostConfig:
    return hosting.HostConfig(hosted=True, limits=dataclasses.replace(hosting.HOSTED_LIMITS,
                                                                      training_bytes=int(training_bytes)))


@pytest.fixture(scope="module")
def wide_catalogue() -> Dataset:
    """3,000 people over 20,000 items (60,000 interactions, long-tailed): EASE's items² dominates."""
    rng = np.random.default_rng(7)
    n_users, n_items, per_user = 3000, 20_000, 20
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.8
    popularity /= popularity.sum()
    users = np.repeat(np.arange(n_users), per_user)
    items = np.concatenate([rng.choice(n_items, per_user, replace=False, p=popularity) for _ in range(n_users)])
    # every item appears at least once, so the catalogue really has 20,000 items
    items[: n_items] = np.arange(n_items)
    frame = pd.DataFrame({"user": users.astype(str), "item": items.astype(str), "rating": 1.0})
    return Dataset.from_frame(frame.drop_duplicates(["user", "item"]), rating=None, name="wide")


# ---------------------------------------------------------------------- the contract over the registry
@pytest.mark.parametrize("key", sorted(registry))
def test_every_registered_model_estimates_its_memory(key):
    cls = registry[key]
    small = cls.estimate_memory({}, *ML_100K)
    assert isinstance(small, int) and small >= cls.memory_overhead > 0
    # more data never needs less memory
    assert cls.estimate_memory({}, 943, 2 * 1682, 80_000) >= small
    assert cls.estimate_memory({}, 2 * 943, 1682, 80_000) >= small
    assert cls.estimate_memory({}, 943, 1682, 160_000) > small
    assert cls.estimate_memory(None, *ML_100K) == small  # None = the defaults


def test_an_estimate_checks_the_parameters_like_fit_does():
    with pytest.raises(DataError, match="Unknown parameter"):
        get("ease").estimate_memory({"lambda": 3}, *ML_100K)
    assert full_params(get("ease"), {"lam": 10})["reg"] == 10.0  # the old name still sets the penalty


# ---------------------------------------------------------------------- growth
def _second_difference_ratio(cls, params: dict, grow: str) -> float:
    """(E(4n) - E(2n)) / (E(2n) - E(n)) as one size grows: 2 when linear, 4 when quadratic."""
    base = {"n_users": 50_000, "n_items": 5_000, "n_interactions": 2_000_000}

    def estimate(factor: int) -> int:
        sizes = {**base, grow: base[grow] * factor}
        return cls.estimate_memory(params, sizes["n_users"], sizes["n_items"], sizes["n_interactions"])

    return (estimate(4) - estimate(2)) / (estimate(2) - estimate(1))


def test_ease_grows_quadratically_in_items_and_ials_linearly():
    assert _second_difference_ratio(get("ease"), {}, "n_items") == pytest.approx(4.0, rel=0.02)
    assert _second_difference_ratio(get("ials"), {}, "n_items") == pytest.approx(2.0, rel=1e-6)
    # EASE at 20,000 items needs its two 20k x 20k matrices: over 4.8 GB (3.2 GB float64 + 1.6 GB float32)
    assert get("ease").estimate_memory({}, 50_000, 20_000, 2_000_000) > 12 * 20_000**2
    # iALS: factor tables and the loss's float64 gathers at every cell (3 x 2M x 64 x 8 bytes)
    ials = get("ials").estimate_memory({}, 50_000, 20_000, 2_000_000)
    assert 3 * 2_000_000 * 64 * 8 < ials < get("ease").estimate_memory({}, 50_000, 20_000, 2_000_000) / 2


def test_user_knn_pays_a_batch_by_users_block_and_embeddings_their_size():
    user_knn = get("user_knn")
    # each batch of 1,024 users is compared with every user: ~4 float64 (batch x users) blocks
    assert _second_difference_ratio(user_knn, {}, "n_users") == pytest.approx(2.0, rel=1e-6)
    assert user_knn.estimate_memory({}, 100_000, 5000, 2_000_000) - user_knn.estimate_memory(
        {}, 50_000, 5000, 2_000_000) >= 50_000 * 1024 * 4 * 8
    small = get("mult_vae").estimate_memory({"hidden": 200}, *ML_100K)
    large = get("mult_vae").estimate_memory({"hidden": 2000}, *ML_100K)
    assert large - small >= 1682 * 1800 * 2 * 4  # at least the larger encoder and decoder it keeps
    assert get("mult_vae").estimate_memory({"hidden": 4000}, *ML_100K) - large >= 1682 * 2000 * 2 * 16  # + Adam


# ---------------------------------------------------------------------- the budget check
def test_ease_on_a_wide_catalogue_is_refused_with_a_leaner_model_and_a_catalogue_size(wide_catalogue):
    cfg = _config(1 * GB)
    ease = get("ease")
    needed = ease.estimate_memory({}, wide_catalogue.n_users, wide_catalogue.n_items,
                                  wide_catalogue.n_interactions)
    assert needed > 4 * GB
    with pytest.raises(DataError) as refused:
        hosting.check_training_budget(ease, {}, wide_catalogue, cfg)
    message = str(refused.value)
    assert f"EASE would need about {needed / GB:.1f} GB" in message
    assert "this server allows 1.0 GB per training" in message
    assert "3,000 users, 20,000 items" in message
    assert "use iALS" in message
    cut = int(message.split("filter the catalogue to fewer than ")[1].split(" items")[0].replace(",", ""))
    shape = (wide_catalogue.n_users, wide_catalogue.n_interactions)
    assert ease.estimate_memory({}, shape[0], cut, shape[1]) <= GB < ease.estimate_memory({}, shape[0], cut + 1,
                                                                                        shape[1])
    least = int(message.split("at least ")[1].split(" interactions")[0])
    assert int(np.sum(wide_catalogue.item_popularity >= least)) <= cut
    # the model offered instead does fit
    assert hosting.check_training_budget(get("ials"), {}, wide_catalogue, cfg) <= GB


def test_an_embedding_model_is_offered_the_embedding_size_that_fits(wide_catalogue):
    mult_vae = get("mult_vae")
    shape = (wide_catalogue.n_users, wide_catalogue.n_items, wide_catalogue.n_interactions)
    budget = mult_vae.estimate_memory({"hidden": 700}, *shape) + 1
    with pytest.raises(DataError) as refused:
        hosting.check_training_budget(mult_vae, {"hidden": 4096}, wide_catalogue, _config(budget))
    size = int(str(refused.value).split("set hidden to ")[1].split(" or less")[0])
    assert mult_vae.estimate_memory({"hidden": size}, *shape) <= budget
    assert mult_vae.estimate_memory({"hidden": size + 1}, *shape) > budget
    assert 700 <= size < 4096


def test_a_training_within_the_budget_returns_its_estimate(wide_catalogue):
    pop = get("pop")
    shape = (wide_catalogue.n_users, wide_catalogue.n_items, wide_catalogue.n_interactions)
    assert hosting.check_training_budget(pop, {}, wide_catalogue, _config(GB)) == pop.estimate_memory({}, *shape)


def test_the_budget_comes_from_the_environment(wide_catalogue, monkeypatch):
    monkeypatch.setenv("RECSYS_HOSTED", "1")
    monkeypatch.setenv("RECSYS_LIMIT_TRAINING_BYTES", str(64 * MB))
    with pytest.raises(DataError, match="this server allows 64 MB per training"):
        hosting.check_training_budget(get("item_knn"), {}, wide_catalogue)
    monkeypatch.setenv("RECSYS_LIMIT_TRAINING_BYTES", str(16 * GB))
    assert hosting.check_training_budget(get("item_knn"), {}, wide_catalogue) < 16 * GB


# ---------------------------------------------------------------------- estimates against reality
_MEASURE = r"""
import json, sys
from recsys.data import load
from recsys.evaluation import evaluate
from recsys.models import create, get
from recsys.store import split_dataset

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024

key = sys.argv[1]
split = {"method": "random", "test_fraction": 0.2, "seed": 42}
sample = load("sample")
# a server is warm: what the first training of a process pays once (libraries, thread pools, the
# allocator's pools) is paid here, on a slice of the sample, before the measured training
small = split_dataset(sample.subset(sample.user < 300), split)
evaluate(create(key).fit(small.train), small.train, small.test, k=[10], bootstrap=100)
parts = split_dataset(sample, split)
train = parts.train
model = create(key)
before = status("VmRSS:")
open("/proc/self/clear_refs", "w").write("5")  # the peak (VmHWM) starts again from here
model.fit(train)
evaluate(model, train, parts.test, k=[1, 5, 10, 20, 50], bootstrap=500)
print(json.dumps({"peak": status("VmHWM:") - before,
                  "estimate": get(key).estimate_memory({}, train.n_users, train.n_items, train.n_interactions)}))
"""


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc to reset the peak")
@pytest.mark.parametrize("key", ["ease", "item_knn", "user_knn", "ials"])
def test_the_estimate_is_not_below_the_measured_peak(key):
    """Fit + evaluate in a warmed-up process: its peak resident memory above the loaded data stays
    under the estimate, and the estimate is not wildly above it either."""
    out = subprocess.run([sys.executable, "-c", _MEASURE, key], cwd=REPO_ROOT, capture_output=True, text=True,
                         timeout=300, check=True).stdout
    figures = json.loads(out.strip().splitlines()[-1])
    assert figures["peak"] <= figures["estimate"] <= 4 * max(figures["peak"], 16 * MB), figures

"""Capabilities and candidate scoring, over the whole registry: a new model joins by registering.

Every capability a model claims must work on a fitted model, ``score_candidates`` must equal
``score`` read at the candidates, and no page or serving module may read a model's fitted
``_`` state: they ask the model (``recsys.models.capabilities``, ``trained_on``,
``score_candidates``, ``inner_product_embeddings``).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from recsys.models import create, registry
from recsys.models.capabilities import CAPABILITIES, METHODS, capabilities, example_list, has, models_with
from recsys.serving import retrieval

ROOT = Path(__file__).resolve().parents[2]


def test_a_class_claims_only_what_each_fitted_model_of_it_provides(key, fitted):
    claimed = capabilities(registry[key])
    assert claimed <= CAPABILITIES
    assert claimed <= capabilities(fitted)
    for name in capabilities(fitted):
        assert callable(getattr(fitted, METHODS[name]))


def test_every_claimed_capability_works(fitted, blocks):
    train, _ = blocks
    found = capabilities(fitted)
    if "user_embeddings" in found:
        assert fitted.user_embeddings().shape[0] == train.n_users
    if "item_embeddings" in found:
        assert fitted.item_embeddings().shape[0] == train.n_items
    if "similar_items" in found:
        items, scores = fitted.similar_items(0, 3)
        assert len(items) == len(scores) <= 3 and 0 not in np.asarray(items)
    if "fold_in" in found:
        history = train.positives[0].indices[:3]
        assert np.asarray(fitted.score_history(history)).ravel().shape == (train.n_items,)
    if "explain" in found:
        item = int(np.setdiff1d(np.arange(train.n_items), train.seen[0].indices)[0])
        reasons = fitted.explain(0, item)
        assert all(isinstance(weight, float) for _, weight in reasons)
    if "predicts_ratings" in found:
        assert fitted.predict(np.array([0, 1]), np.array([2, 3])).shape == (2,)
    if "attention" in found:
        weights = np.asarray(fitted.attention(train.positives[0].indices[:4]))
        assert weights.ndim == 4 and weights.shape[-1] == weights.shape[-2] <= 4


def test_families_answer_as_the_design_says():
    assert {"fold_in", "similar_items", "explain"} <= capabilities(registry["ease"])
    assert {"user_embeddings", "item_embeddings", "fold_in"} <= capabilities(registry["ials"])
    assert "attention" in capabilities(registry["sasrec"])
    assert "predicts_ratings" in capabilities(registry["item_knn"])
    assert capabilities(registry["random"]) == frozenset()
    assert not has(registry["pop"], "user_embeddings")
    # mf_sgd has a predict method, but only the mse loss predicts ratings
    assert "predicts_ratings" in capabilities(create("mf_sgd", loss="mse"))
    assert "predicts_ratings" not in capabilities(create("mf_sgd", loss="bce"))


def test_hints_name_the_models_that_have_the_capability():
    assert models_with("attention") == [registry["sasrec"].label]
    assert registry["pop"].label not in models_with("item_embeddings")
    labels = models_with("user_embeddings", "item_embeddings")
    assert example_list("user_embeddings", "item_embeddings", limit=2) == f"{labels[0]} or {labels[1]}"
    with pytest.raises(ValueError, match="unknown capability"):
        has(registry["ease"], "telepathy")


def test_score_candidates_equals_score_at_the_candidates(key, fitted, blocks):
    train, _ = blocks
    users = np.array([0, 5, 9, 17, 23])
    rng = np.random.default_rng(3)
    candidates = np.stack([rng.choice(train.n_items, 7, replace=False) for _ in users])
    candidates[1, 2] = -1  # a missing slot, as retrieval pads
    expected = np.take_along_axis(fitted.score(users), np.maximum(candidates, 0), axis=1)
    got = fitted.score_candidates(users, candidates)
    assert got.shape == candidates.shape and got.dtype == np.float32
    assert got[1, 2] == -np.inf
    keep = candidates >= 0
    np.testing.assert_allclose(got[keep], expected[keep], rtol=1e-4, atol=1e-5)
    # one shared candidate list for every user is broadcast
    shared = fitted.score_candidates(users, candidates[0])
    np.testing.assert_allclose(shared, np.take_along_axis(fitted.score(users), np.tile(candidates[0], (5, 1)), 1),
                               rtol=1e-4, atol=1e-5)


def test_retrieval_pairs_reproduce_factorization_scores(blocks):
    train, _ = blocks
    model = create("ials", embedding_size=8, iterations=3).fit(train)
    users, items = retrieval.embedding_pair(model)
    np.testing.assert_allclose(users[:4] @ items.T, model.score(np.arange(4)), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="no user and item embeddings"):
        retrieval.embedding_pair(create("pop").fit(train))


def test_an_unfitted_model_says_so_once_for_every_entry_point():
    model = create("ease")
    for call in (lambda: model.score([0]), lambda: model.score_candidates([0], [[0]]), lambda: model.trained_on):
        with pytest.raises(RuntimeError, match="not fitted yet"):
            call()


# ---------------------------------------------------------------------------- no fitted state read from outside

SCANNED = ("app_pages", "ui", "recsys/serving")
# attribute reads ending in "_" that are not a model's fitted state: Python's own dunders
ALLOWED = re.compile(r"\.__\w+__")
UNDERSCORE_READ = re.compile(r"\.(\w+_)(?!\w)")


def fitted_state_reads(source: str) -> list[str]:
    """``.name_`` attribute reads in ``source`` outside comments and strings' words."""
    found = []
    for number, line in enumerate(source.splitlines(), 1):
        code = line.split("#", 1)[0]
        for match in UNDERSCORE_READ.finditer(code):
            if not ALLOWED.match(code, match.start()):
                found.append(f"{number}: {line.strip()}")
    return found


def test_the_scan_finds_fitted_state_reads():
    assert fitted_state_reads("n = model.train_.n_items\nx = ranker.user_factors_[u]\n") == [
        "1: n = model.train_.n_items", "2: x = ranker.user_factors_[u]"]
    assert fitted_state_reads("super().__init__(**f)  # reads model.weights_\n") == []


def test_pages_ui_and_serving_never_read_a_models_fitted_state():
    offenders = {}
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            reads = fitted_state_reads(path.read_text(encoding="utf-8"))
            if reads:
                offenders[str(path.relative_to(ROOT))] = reads
    assert offenders == {}, "ask the model (capabilities, trained_on, score_candidates) instead of reading its state"


def test_serving_asks_models_not_their_classes():
    for path in sorted((ROOT / "recsys" / "serving").rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        assert "FactorizationModel" not in source and "ItemSimilarityModel" not in source, path.name
        assert "recsys.evaluation" not in source, f"{path.name} imports from recsys.evaluation"

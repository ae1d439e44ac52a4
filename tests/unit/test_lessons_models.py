"""Model lessons: each shows its effect on its default data, and the verdict follows this run's numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data import Dataset
from recsys.data.errors import DataError
from recsys.data.sparsify import k_core, latest, sparsify
from recsys.lessons import Context, lessons
from recsys.lessons import factorization as fz
from recsys.lessons import graphs as gr
from recsys.lessons import neural as nn_lesson
from recsys.lessons import popularity as pp
from recsys.lessons import sparsity as spl


def _toy() -> Dataset:
    frame = pd.DataFrame({"user": [1, 1, 1, 2, 2, 3, 3, 3, 4], "item": [10, 20, 30, 10, 20, 10, 30, 40, 50],
                          "rating": [5, 4, 3, 5, 2, 1, 4, 3, 5], "ts": np.arange(9)})
    return Dataset.from_frame(frame, timestamp="ts")


# ------------------------------------------------------------------ sparsify / k-core
def test_sparsify_keeps_the_share_and_the_id_maps():
    ds = spl.generated_world(200, 100, 7)
    half = sparsify(ds, 0.5, seed=3)
    assert half.n_interactions == round(0.5 * ds.n_interactions)
    assert half.n_users == ds.n_users and half.n_items == ds.n_items
    assert np.array_equal(half.item_ids, ds.item_ids)
    # a subset: every kept pair was in the parent
    parent = set(zip(ds.user.tolist(), ds.item.tolist()))
    assert set(zip(half.user.tolist(), half.item.tolist())) <= parent
    assert np.array_equal(sparsify(ds, 0.5, seed=3).item, half.item)
    assert not np.array_equal(sparsify(ds, 0.5, seed=4).item, half.item)


def test_sparsify_protects_the_marked_interactions():
    ds = spl.generated_world(200, 100, 7)
    last = latest(ds, 2)
    thin = sparsify(ds, 0.1, seed=0, protect=last)
    kept = set(zip(thin.user.tolist(), thin.item.tolist()))
    assert set(zip(ds.user[last].tolist(), ds.item[last].tolist())) <= kept
    assert thin.n_interactions == last.sum() + round(0.1 * (~last).sum())


def test_latest_marks_each_users_last_interactions_in_time_order():
    ds = _toy()
    codes = ds.item_ids[ds.item[latest(ds, 1)]]
    users = ds.user_ids[ds.user[latest(ds, 1)]]
    assert dict(zip(users.tolist(), codes.tolist())) == {1: 30, 2: 20, 3: 40, 4: 50}
    assert latest(ds, 2).sum() == 7  # user 4 has only one


def test_k_core_is_iterative():
    # user 4 has one interaction, which makes item 50 unpopular; dropping 40 (one rating) then leaves
    # user 3 with two: the 2-core is users 1-3 on items 10-30
    core = k_core(_toy(), 2)
    assert sorted(set(core.item_ids[core.item].tolist())) == [10, 20, 30]
    assert sorted(set(core.user_ids[core.user].tolist())) == [1, 2, 3]
    assert np.bincount(core.user, minlength=core.n_users)[np.unique(core.user)].min() >= 2



def test_empty_core_is_refused():
    # the first pass of the 3-core keeps (1, 10) and (3, 10); the second finds both users at one
    with pytest.raises(DataError, match="lower k"):
        k_core(_toy(), 3)


@pytest.mark.parametrize("bad", [0, 1.5, -0.1])
def test_bad_fraction_is_refused(bad):
    with pytest.raises(DataError, match="keep_fraction"):
        sparsify(_toy(), bad)


# ------------------------------------------------------------------ item-item vs user-user under sparsity
@pytest.mark.parametrize("seed", [0, 1])
def test_both_neighbourhoods_lose_accuracy_and_the_verdict_follows_the_retained_shares(seed):
    result = lessons()["sparsity_knn"].run(Context(), seed=seed, users=300, items=200)
    table = result.tables["NDCG@10 as the data thins"]
    assert list(table["share kept"]) == [1.0, 0.5, 0.25, 0.12]
    assert table["density"].is_monotonic_decreasing
    for _, label in spl.MODELS:
        assert table[label].iloc[-1] < 0.6 * table[label].iloc[0]
    f = result.figures
    retained = {"item": f["item_knn_retained"], "user": f["user_knn_retained"]}
    expected = (2 if abs(retained["item"] - retained["user"]) < spl.SAME_SHARE
                else 0 if retained["item"] > retained["user"] else 1)
    assert result.correct == expected
    # on this generated world user-user keeps clearly more of its accuracy (measured 0.2 vs 0.1 of it)
    assert spl.SPARSITY_CHOICES[result.correct] == "User-user kNN"
    assert f"{f['user_knn_sparsest']:.3f}" in result.explanation


def test_the_test_questions_stay_the_same_at_every_density():
    ds = spl.generated_world(300, 200, 7)
    tests = []
    for share in (1.0, 0.25):
        thin = spl.thinned(ds, share, 3, seed=0)
        mask = latest(thin, 3)
        tests.append(set(zip(thin.user[mask].tolist(), thin.item[mask].tolist())))
    assert tests[0] == tests[1]


def test_share_list_without_thinning_is_refused():
    with pytest.raises(DataError, match="below 1"):
        lessons()["sparsity_knn"].run(keep="1, 1")


# ------------------------------------------------------------------ embedding size
def test_the_size_sweep_shows_test_ndcg_falling_past_the_best_size_while_train_keeps_rising():
    result = lessons()["embedding_size"].run(Context())
    table = result.tables["Train and test NDCG by embedding size"]
    assert table["train NDCG"].is_monotonic_increasing
    best = int(table["test NDCG"].idxmax())
    assert 0 < best < len(table) - 1  # an interior peak: too small and too large both lose
    assert table["test NDCG"].iloc[-1] < 0.7 * table["test NDCG"].iloc[best]
    assert table["test NDCG"].iloc[0] < 0.8 * table["test NDCG"].iloc[best]
    assert fz.SIZE_CHOICES[result.correct].startswith("Test NDCG falls")
    assert f"{result.figures['best_test']:.3f}" in result.explanation


def test_train_ndcg_ranks_training_items_back_without_excluding_them():
    ds = spl.generated_world(300, 200, 7)

    class Memoriser:  # scores exactly the training matrix: a perfect fit
        def score(self, users):
            return ds.positives[users].toarray()

    assert fz.train_ndcg(Memoriser(), ds, 10) == pytest.approx(1.0)


def test_a_sweep_needs_three_sizes():
    with pytest.raises(DataError, match="three"):
        lessons()["embedding_size"].run(sizes="4, 4, 8")


# ------------------------------------------------------------------ one BPR step
def test_bpr_step_matches_the_gradient_of_the_loss():
    rng = np.random.default_rng(0)
    p, qi, qj = (rng.normal(size=(1, 4)) for _ in range(3))
    lr, reg = 0.05, 0.0

    def loss(p_, i_, j_):
        return float(np.logaddexp(0, -(p_ @ (i_ - j_).T))[0, 0])

    new_p, new_i, new_j, _ = fz.bpr_step(p, qi, qj, lr, reg)
    eps = 1e-6
    for vector, moved, which in ((p, new_p, 0), (qi, new_i, 1), (qj, new_j, 2)):
        grad = np.zeros(4)
        for d in range(4):
            bumped = [p.copy(), qi.copy(), qj.copy()]
            bumped[which][0, d] += eps
            grad[d] = (loss(*bumped) - loss(p, qi, qj)) / eps
        assert np.allclose(moved - vector, -lr * grad, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_step_raises_every_sampled_triplet_and_pushes_ordered_ones_less(seed):
    result = lessons()["bpr_step"].run(Context(), seed=seed)
    table = result.tables["One SGD step per triplet"]
    change = table["x_uij after"] - table["x_uij before"]
    assert (change > 0).all() and fz.STEP_CHOICES[result.correct] == "It rises for every triplet"
    assert table["loss after"].mean() < table["loss before"].mean()
    # the step's weight is σ(-x_uij): it shrinks as the triplet gets better ordered
    order = np.argsort(table["x_uij before"].to_numpy())
    assert np.all(np.diff(table["step weight σ(-x_uij)"].to_numpy()[order]) <= 0)
    ds = spl.generated_world(300, 200, 7)
    user = int(result.figures["user"])
    watched = set(ds.item_titles(ds.positives[user].indices))
    assert set(table["i (watched)"]) <= watched


def test_a_large_start_and_the_l2_pull_can_lower_a_well_ordered_triplet():
    result = lessons()["bpr_step"].run(Context(), seed=1, init_std=1.0)
    assert result.figures["falls"] >= 1 and result.correct != 0


def test_unknown_user_is_refused():
    with pytest.raises(DataError, match="not in"):
        lessons()["bpr_step"].run(user="no-such-person")


# ------------------------------------------------------------------ rating -> ranking -> page
def test_rating_only_ranks_far_worse_with_the_same_rmse(one_torch_thread):
    context = Context()
    result = lessons()["rating_to_ranking"].run(context)
    f = result.figures
    assert f["rmse_rating_only"] == pytest.approx(f["rmse_presence"], abs=1e-6)
    assert f["ndcg_rating_only"] < 0.5 * f["ndcg_presence"]
    assert f["popularity_rating_only"] < f["popularity_presence"]
    assert fz.RANKING_CHOICES[result.correct].startswith("It predicts ratings just as well")
    assert len(context.fits) == 2


def test_on_the_sample_the_rating_only_list_is_near_useless(sample, one_torch_thread):
    # measured with the lesson's small defaults: NDCG@10 0.020 against 0.170 (the full-size models
    # of the lesson's setup: 0.018 against 0.195), both at RMSE 0.856
    result = lessons()["rating_to_ranking"].run(Context(dataset=sample))
    f = result.figures
    assert f["ndcg_rating_only"] < 0.25 * f["ndcg_presence"]
    assert f["popularity_rating_only"] < 0.5 * f["popularity_presence"]
    assert fz.RANKING_CHOICES[result.correct].startswith("It predicts ratings just as well")


# ------------------------------------------------------------------ the AND (rom-com) taste
@pytest.fixture
def one_torch_thread():
    # the neural lessons train three small networks; on a shared 2-core machine intra-op threads
    # only fight each other. Restored afterwards.
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_the_and_world_holds_only_both_genre_films():
    world = nn_lesson.and_world(120, 60, 4, 0.5, 3)
    ds = world.dataset
    assert (world.flags.sum(axis=1) == 2).all()  # every film has exactly two genres
    both = world.flags[:, world.pairs[:, 0]].T & world.flags[:, world.pairs[:, 1]].T
    assert np.array_equal(world.likes, both)
    assert world.likes[ds.user, ds.item].all()  # nobody watched a film outside their taste
    assert not (world.likes & nn_lesson.one_genre(world)).any()
    assert nn_lesson.one_genre(world).any()  # near misses exist: films sharing one genre of the pair
    genres = ds.item_genres()
    first = [nn_lesson.GENRES[g] for g in world.pairs[ds.user[0]]]
    assert set(first) == set(genres[ds.item[0]])


def test_the_and_verdict_follows_the_shares():
    verdict = nn_lesson.verdict
    assert verdict({"GMF": 0.5, "MLP": 0.97, "NeuMF": 0.98}) == nn_lesson.BOTH_NEURAL
    assert verdict({"GMF": 0.95, "MLP": 0.97, "NeuMF": 0.98}) == nn_lesson.ALL_EQUAL
    assert nn_lesson.AND_CHOICES[verdict({"GMF": 0.5, "MLP": 0.6, "NeuMF": 0.98})] == "NeuMF"
    assert nn_lesson.AND_CHOICES[verdict({"GMF": 0.9, "MLP": 0.3, "NeuMF": 0.5})] == "GMF"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mlp_and_neumf_recover_the_and_taste_that_a_two_factor_gmf_misses(seed, one_torch_thread):
    # measured (seeds 0, 1, 2) share of top-10 slots on both-genre films, chance 7 %:
    # GMF (2-wide) 52 / 45 / 21 %, MLP 97 / 90 / 94 %, NeuMF 98 / 96 / 96 %, GMF 8-wide 95 / 96 / 96 %
    result = lessons()["and_taste"].run(Context(), seed=seed)
    f = result.figures
    assert f["chance_both"] < 0.1
    assert f["mlp_both"] > f["gmf_both"] + 0.25
    assert f["neumf_both"] > f["gmf_both"] + 0.25
    assert min(f["mlp_both"], f["neumf_both"]) > 0.8
    # the control: a dot product with vectors as wide as the MLP's ranks the AND as well
    assert f["wide_gmf_both"] > 0.85 and f["wide_gmf_both"] > f["mlp_both"] - nn_lesson.SAME_SHARE
    table = result.tables["What each model puts in the top 10"]
    gmf = table.set_index("model").loc["GMF"]
    assert gmf["top 10 with one genre only"] > 0.15  # GMF's misses are the near misses
    assert nn_lesson.AND_CHOICES[result.correct] == "MLP and NeuMF, well ahead of GMF"
    assert "room in the vectors" in result.explanation


# ------------------------------------------------------------------ L layers = L hops
def test_hop_distances_match_a_hand_walk_of_the_toy_graph():
    ds = _toy()  # users 1,2,3,4 -> codes 0..3; items 10,20,30,40,50 -> nodes 4..8
    adjacency = gr.bipartite_adjacency(ds)
    assert adjacency.shape == (9, 9) and adjacency.nnz == 2 * ds.n_interactions
    distance = gr.hop_distances(adjacency, 1, 4)  # user 2 watched 10 and 20
    # 1 hop: items 10, 20; 2 hops: users 1, 3 (share 10/20); 3 hops: items 30, 40; user 4 / item 50 unreachable
    assert distance.tolist() == [2, 0, 2, gr.UNREACHED, 1, 1, 3, 3, gr.UNREACHED]


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_signal_after_l_layers_sits_exactly_on_the_l_hop_reach_and_the_graph_keeps_its_shape(layers):
    result = lessons()["layers_are_hops"].run(Context(), layers=layers)
    table = result.tables["Layer by layer"]
    assert table["mean-of-layers support = reach"].all()
    assert table["graph nodes"].nunique() == 1 and table["graph edges"].nunique() == 1
    ds = spl.generated_world(300, 200, 7)
    assert table["graph nodes"].iloc[0] == ds.n_users + ds.n_items
    assert table["graph edges"].iloc[0] == ds.n_interactions
    user = int(result.figures["user"])
    assert table["edges the signal crossed"].iloc[1] == ds.user_activity[user]
    assert table["films within reach"].iloc[1] == ds.user_activity[user]
    assert table["edges the signal crossed"].is_monotonic_increasing
    assert result.correct == layers - 1  # on this world 3 hops do not yet cover every node
    assert result.figures["signal_nodes"] < result.figures["graph_nodes"]


def test_the_propagation_matrix_is_symmetric_with_spectral_radius_one():
    ds = spl.generated_world(300, 200, 7)
    propagation = gr.normalised(gr.bipartite_adjacency(ds))
    assert abs(propagation - propagation.T).max() < 1e-12
    top = np.max(np.abs(np.linalg.eigvalsh(propagation.toarray())))
    assert top == pytest.approx(1.0)


# ------------------------------------------------------------------ the popularity trap
def test_head_share_counts_only_filled_slots():
    head = np.array([True, False, False, True])
    recommended = np.array([[0, 1, 3], [2, -1, -1]])
    assert pp.head_share(recommended, head, 3) == pytest.approx(2 / 4)
    assert pp.head_share(recommended, head, 1) == pytest.approx(1 / 2)


@pytest.mark.parametrize("share, expected", [(0.02, 3), (0.12, 0), (0.45, 1), (0.8, 2)])
def test_the_trap_verdict_places_the_share_between_catalogue_and_log(share, expected):
    assert pp._verdict(share, catalogue_share=0.1, watched_share=0.46) == expected


def test_personalised_lists_lean_on_the_blockbusters_beyond_their_share_of_the_log(sample):
    context = Context(dataset=sample)
    result = lessons()["popularity_trap"].run(context)
    f = result.figures
    assert f["catalogue_share"] == pytest.approx(200 / sample.n_items)
    assert f["popularity_share"] == pytest.approx(1.0)
    # measured on the sample: 46 % of the log, and 80-92 % of the personalised top-10 slots
    for key in ("item_knn", "ease", "ials"):
        assert f[f"{key}_share"] > 1.5 * f["watched_share"] > 3 * f["catalogue_share"]
    assert pp.TRAP_CHOICES[result.correct].startswith("Well above")
    assert f"{f['watched_share']:.0%}" in result.explanation
    assert len(context.fits) == 4


# ------------------------------------------------------------------ through the store
def test_a_stored_sparsity_run_trains_nothing_the_second_time(store):
    first = Context(store=store)
    lessons()["sparsity_knn"].run(first, users=300, items=200, keep="1, 0.5")
    again = Context(store=store)
    lessons()["sparsity_knn"].run(again, users=300, items=200, keep="1, 0.5")
    assert len(first.fits) == 4 and again.fits == []


def test_the_worked_lessons_train_nothing():
    context = Context()
    lessons()["bpr_step"].run(context)
    lessons()["layers_are_hops"].run(context)
    assert context.fits == []

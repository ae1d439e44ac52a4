"""The peers benchmark: the adapter's id mapping, the ratios, missing libraries, the markdown section."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from recsys import peers
from recsys.data import Dataset
from recsys.evaluation import evaluate


@pytest.fixture(scope="module")
def halves():
    """Four users with text ids, five items; each user's last item (by position) is held out."""
    rows = [("u1", "a"), ("u1", "b"), ("u1", "c"),
            ("u2", "b"), ("u2", "c"), ("u2", "d"),
            ("u3", "a"), ("u3", "d"), ("u3", "e"),
            ("u4", "c"), ("u4", "e"), ("u4", "a")]
    ds = Dataset.from_frame(pd.DataFrame(rows, columns=["user", "item"]), rating=None)
    held_out = np.zeros(len(rows), dtype=bool)
    held_out[[2, 5, 8, 11]] = True
    frame_positions = {(u, i): k for k, (u, i) in enumerate(rows)}
    test_mask = np.array([held_out[frame_positions[(ds.user_ids[u], ds.item_ids[i])]]
                          for u, i in zip(ds.user, ds.item)])
    return ds.subset(~test_mask, name="train"), ds.subset(test_mask, name="test")


def fake_peer(train, rng_seed=0):
    """A peer with its own shuffled indices, one item it never saw and a score matrix in its own order."""
    rng = np.random.default_rng(rng_seed)
    peer_users = rng.permutation(train.n_users)
    peer_items = rng.permutation(train.n_items)
    peer_items[peer_items == train.n_items - 1] = -1  # the peer dropped this item (no training interaction)
    peer_scores = rng.standard_normal((train.n_users, train.n_items - 1)).astype(np.float32)
    return peer_users, peer_items, peer_scores


def test_adapter_reads_each_code_through_the_peer_indices(halves):
    train, _ = halves
    peer_users, peer_items, peer_scores = fake_peer(train)
    adapter = peers.PeerRecommender("fake", train, peer_users, peer_items, lambda rows: peer_scores[rows])
    users = np.array([2, 0, 3])
    scores = adapter.score(users)
    assert scores.shape == (3, train.n_items) and scores.dtype == np.float32
    for r, user in enumerate(users):
        for item in range(train.n_items):
            expected = -np.inf if peer_items[item] < 0 else peer_scores[peer_users[user], peer_items[item]]
            assert scores[r, item] == expected


def test_a_user_the_peer_never_saw_gets_no_recommendation(halves):
    train, _ = halves
    peer_users, peer_items, peer_scores = fake_peer(train)
    peer_users = peer_users.copy()
    peer_users[1] = -1
    asked = []

    def score_peer(rows):
        asked.append(rows.copy())
        return peer_scores[rows]

    scores = peers.PeerRecommender("fake", train, peer_users, peer_items, score_peer).score(np.array([0, 1]))
    assert np.all(scores[1] == -np.inf) and np.isfinite(scores[0]).sum() == train.n_items - 1
    assert asked[0].tolist() == [peer_users[0]]  # the unknown user is never passed to the peer


def test_id_maps_must_cover_every_code(halves):
    train, _ = halves
    with pytest.raises(ValueError, match="every user"):
        peers.PeerRecommender("fake", train, np.arange(train.n_users - 1), np.arange(train.n_items), None)


def test_index_map_goes_through_external_ids():
    external = np.array(["x", "y", "z"])
    assert peers.index_map({"z": 0, "x": 1}, external).tolist() == [1, -1, 0]
    assert peers.index_map({7: 2, 3: 0, 5: 1}, np.array([3, 4, 5, 7], dtype=np.int64)).tolist() == [0, -1, 1, 2]
    assert peers.index_map({}, external).tolist() == [-1, -1, -1]


def test_our_evaluator_ranks_the_peer_scores(halves):
    train, test = halves
    peer_users, peer_items, _ = fake_peer(train)
    # a peer that scores exactly each user's held-out item highest: perfect NDCG through any id shuffle
    truth = np.zeros((train.n_users, train.n_items - 1), dtype=np.float32)
    rows, cols = test.positives.nonzero()
    known = peer_items[cols] >= 0
    truth[peer_users[rows[known]], peer_items[cols[known]]] = 1.0
    adapter = peers.PeerRecommender("fake", train, peer_users, peer_items, lambda r: truth[r])
    report = evaluate(adapter, train, test, k=[1], bootstrap=0)
    reachable = np.array([peer_items[i] >= 0 for i in cols[np.argsort(rows)]])
    assert report.means["ndcg@1"] == pytest.approx(reachable.mean())


def test_ratios_are_ours_over_the_peer():
    row = peers.PeerRow("BPR-MF", "bpr_mf", 0.44, 3.0, "lib", "BPR", "ok", 0.40, 1.5)
    assert row.quality_ratio == pytest.approx(1.1)
    assert row.time_ratio == pytest.approx(2.0)
    missing = peers.PeerRow("BPR-MF", "bpr_mf", 0.44, 3.0, "lib", "BPR", "not installed")
    assert missing.quality_ratio is None and missing.time_ratio is None
    instant = peers.PeerRow("Most popular", "pop", 0.22, 0.0004, "lib", "MostPop", "ok", 0.22, 0.002)
    assert instant.quality_ratio == pytest.approx(1.0) and instant.time_ratio is None


def test_markdown_rows_show_numbers_ratios_and_missing_peers():
    rows = [peers.PeerRow("iALS", "ials", 0.44, 0.5, "implicit", "AlternatingLeastSquares", "ok", 0.40, 0.25),
            peers.PeerRow("EASE", "ease", 0.44, 1.0, "cornac", "EASE", "not installed")]
    text = peers.to_markdown(rows, "Tiny", 42)
    assert text.startswith(peers.HEADING)
    assert ("| iALS | random 80/20 | `ials` | 0.4400 | 0.50 | implicit | AlternatingLeastSquares | 0.4000 | 0.25 "
            "| 1.100 | 2.00 |") in text
    assert "| EASE | random 80/20 | `ease` | 0.4400 | 1.00 | cornac | EASE | not installed | — | — | — |" in text
    assert "seed 42" in text and "alpha = 6" in text  # the split and the settings mapping are stated


def test_a_missing_library_is_a_row_not_an_error(halves, monkeypatch):
    train, test = halves
    fitted = []
    absent = peers.Peer("Fake", "pop", "no_such_library_for_peers", "Nothing", "none",
                        lambda tr, seed: fitted.append(1))
    assert peers.run_peer(absent, train, test, 42) == ("not installed", None, None)
    assert fitted == []


def test_compare_pairs_our_row_with_each_peer(halves, monkeypatch):
    train, test = halves
    peer_users, peer_items, _ = fake_peer(train)
    rows, cols = test.positives.nonzero()
    truth = np.zeros((train.n_users, train.n_items - 1), dtype=np.float32)
    known = peer_items[cols] >= 0
    truth[peer_users[rows[known]], peer_items[cols[known]]] = 1.0

    def fit_fake(tr, seed):
        return peers.PeerRecommender("fake", tr, peer_users, peer_items, lambda r: truth[r]), 0.5

    ours_calls = []

    def fake_bench(key, tr, te, name, protocol):
        ours_calls.append(key)
        return SimpleNamespace(ndcg_10=0.25, fit_seconds=2.0)

    monkeypatch.setattr("recsys.bench.bench_model", fake_bench)
    fake = (peers.Peer("Most popular", "pop", "numpy", "Fake", "none", fit_fake),
            peers.Peer("Most popular", "pop", "no_such_library_for_peers", "Absent", "none", fit_fake),
            peers.Peer("EASE", "ease", "numpy", "Fake", "none", fit_fake))
    out = peers.compare(lambda protocol: halves, 42, algorithms=["pop"], peers=fake, log=lambda *_: None)
    assert ours_calls == ["pop"]  # ours is trained once for both of its peers, and EASE is not asked for
    assert [r.status for r in out] == ["ok", "not installed"]
    assert out[0].peer_fit_seconds == 0.5 and out[0].time_ratio == pytest.approx(4.0)
    assert out[0].peer_ndcg_10 == pytest.approx(reachable_share(rows, cols, peer_items))


def reachable_share(rows, cols, peer_items):
    # NDCG@10 of a perfect peer with one held-out item per user: 1 where the peer knows the item, else 0
    return float(np.mean(peer_items[cols[np.argsort(rows)]] >= 0))


def test_write_replaces_only_its_own_section(tmp_path):
    path = tmp_path / "benchmarks.md"
    path.write_text("# Benchmarks\n\n## Two-stage serving — X\n\nkept text\n")
    rows = [peers.PeerRow("EASE", "ease", 0.44, 1.0, "cornac", "EASE", "ok", 0.44, 2.0)]
    peers.write(rows, tmp_path, "Tiny", 42)
    peers.write(rows, tmp_path, "Tiny", 42)
    text = path.read_text()
    assert "kept text" in text and text.count(peers.HEADING) == 1
    assert "| 1.000 | 0.50 |" in text


def test_implicit_als_through_the_adapter(halves):
    pytest.importorskip("implicit")
    train, test = halves
    with peers.single_threaded():
        adapter, seconds = peers._implicit_als(train, 42)
    assert seconds >= 0
    users = np.arange(train.n_users)
    scores = adapter.score(users)
    assert np.isfinite(scores).all()
    assert 0.0 <= evaluate(adapter, train, test, k=[2], bootstrap=0).means["ndcg@2"] <= 1.0


def test_cornac_ease_through_the_adapter_equals_our_ease(halves):
    """cornac indexes users and items in its own order; mapped back, its EASE is our EASE, cell by cell."""
    pytest.importorskip("cornac")
    from recsys.models import create

    train, _ = halves
    adapter, _ = peers._cornac_ease_model(train, 42)
    users = np.arange(train.n_users)
    theirs = adapter.score(users)
    ours = create("ease", lam=500.0).fit(train).score(users)
    known = adapter.peer_items >= 0
    assert known.sum() == np.count_nonzero(train.item_popularity)
    np.testing.assert_allclose(theirs[:, known], ours[:, known], rtol=1e-4, atol=1e-7)
    assert np.all(theirs[:, ~known] == -np.inf)


def test_last_windows_are_the_newest_items_left_padded(halves):
    train, _ = halves
    histories = train.histories_in_time_order()
    peer_items = np.arange(train.n_items) + 100  # a shifted peer index shows the mapping is applied
    windows = peers.last_windows(histories, peer_items, 3, pad=-7)
    for user in range(train.n_users):
        history = peer_items[histories.of(user)][-3:]
        expected = [-7] * (3 - len(history)) + history.tolist()
        assert windows[user].tolist() == expected


def test_cornac_sasrec_batch_scores_equal_its_own_per_user_scores(halves):
    pytest.importorskip("cornac")
    train, _ = halves
    adapter, _ = peers._cornac_sasrec(train, 42)
    model = adapter.peer_model
    histories = train.histories_in_time_order()
    scores = adapter.score(np.arange(train.n_users))
    for user in range(train.n_users):
        history = adapter.peer_items[histories.of(user)].tolist()
        own = model.score(adapter.peer_users[user], history)
        np.testing.assert_allclose(scores[user, adapter.peer_items >= 0],
                                   np.asarray(own)[adapter.peer_items[adapter.peer_items >= 0]], rtol=1e-5)


def test_bench_peers_on_the_command_line_writes_its_section(tmp_path):
    from recsys.__main__ import main as cli

    out = tmp_path / "docs"
    out.mkdir()
    (out / "benchmarks.md").write_text("# Benchmarks\n\n## Models\n\nkept rows\n")
    assert cli(["bench", "--peers", "--models", "pop", "--data", "sample_data", "--out", str(out)]) == 0
    text = (out / "benchmarks.md").read_text()
    assert "kept rows" in text
    section = text[text.index(peers.HEADING):]
    assert "Most popular" in section and "kept rows" not in section

"""The bench command's output: what it measures and how it writes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recsys import bench

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"


@pytest.fixture(scope="module")
def rows():
    return bench.run([SAMPLE], models=["pop", "ease"], log=lambda *_: None)


def test_bench_measures_accuracy_time_and_memory(rows):
    assert [r.model for r in rows] == ["pop", "ease"]
    pop, ease = rows
    assert ease.ndcg_10 > pop.ndcg_10 > 0
    assert 0 < ease.recall_20 <= 1 and 0 < ease.coverage_10 <= 1
    assert ease.fit_seconds > 0 and ease.score_seconds > 0
    assert ease.peak_mb > 0
    assert ease.params == {"reg": 500.0}


def test_bench_writes_markdown_and_json_with_its_configuration(rows, tmp_path):
    bench.write(rows, tmp_path, seed=42)
    text = (tmp_path / "benchmarks.md").read_text()
    assert "| `ease` |" in text and "| `pop` |" in text
    assert text.index("| `ease` |") < text.index("| `pop` |"), "rows are sorted best NDCG first"
    payload = json.loads((tmp_path / "benchmarks.json").read_text())
    assert payload["config"]["seed"] == 42
    assert "ceil(0.2 n)" in payload["config"]["split"]
    assert [r["model"] for r in payload["results"]] == ["pop", "ease"]


def test_benchmarking_some_models_replaces_their_rows_and_keeps_the_rest(rows, tmp_path):
    from dataclasses import replace

    pop, ease = rows
    bench.write(rows, tmp_path, seed=42)
    md = tmp_path / "benchmarks.md"
    bench.write_section(md, bench.STORE_HEADING, bench.STORE_HEADING + " — x\n\nstore figure\n")
    bench.write_section(md, bench.SERVING_HEADING, bench.SERVING_HEADING + " — x\n\nserving figure\n")

    remeasured = replace(ease, ndcg_10=0.9876)
    newcomer = replace(pop, model="random", label="Random", ndcg_10=0.0123)
    written = bench.write([remeasured, newcomer], tmp_path, seed=42, merge=True)
    assert [(r.model, r.ndcg_10) for r in written] == [("pop", pop.ndcg_10), ("ease", 0.9876), ("random", 0.0123)]
    text = md.read_text()
    assert "| `ease` | 0.9876 |" in text and f"| `ease` | {ease.ndcg_10:.4f} |" not in text
    assert f"| `pop` | {pop.ndcg_10:.4f} |" in text and "| `random` | 0.0123 |" in text
    assert "store figure" in text and "serving figure" in text, "the other commands' sections survive"
    assert [r["model"] for r in json.loads((tmp_path / "benchmarks.json").read_text())["results"]] == [
        "pop", "ease", "random"]

    # rows measured on another split never share a table with these
    other_seed = bench.write([newcomer], tmp_path, seed=7, merge=True)
    assert [r.model for r in other_seed] == ["random"]


def test_a_full_run_replaces_the_tables_it_measured_and_keeps_other_datasets(rows, tmp_path):
    from dataclasses import replace

    pop, ease = rows
    sample_pop = replace(pop, dataset="sample", ndcg_10=0.1111)
    bench.write([pop, ease, sample_pop], tmp_path, seed=42)
    # every model again on the first dataset, where ease is no longer registered: its row goes, the sample stays
    written = bench.write([replace(pop, ndcg_10=0.2222)], tmp_path, seed=42)
    assert [(r.dataset, r.model, r.ndcg_10) for r in written] == [
        (pop.dataset, "pop", 0.2222), ("sample", "pop", 0.1111)]
    text = (tmp_path / "benchmarks.md").read_text()
    assert "| `ease` |" not in text and "| `pop` | 0.1111 |" in text and "| `pop` | 0.2222 |" in text


def test_homepage_latency_figures_cover_plain_and_all_knobs_pages():
    from recsys.data import load
    from recsys.data.split import random_holdout
    from recsys.models import create

    train, _ = random_holdout(load(SAMPLE), 0.2, seed=42)
    model = create("ease").fit(train)
    figures = bench.homepage_figures([model], train, n_users=5, log=lambda *_: None)
    assert [(f["model"], f["knobs"], f["pages"]) for f in figures] == [("ease", "default", 5), ("ease", "all knobs", 5)]
    for f in figures:
        assert 0 < f["p50_ms"] <= f["p99_ms"] <= f["max_ms"]
    text = bench.serving_markdown({"dataset": "x", "seed": 42, "backend": "exact", "latency_requests": 5,
                                   "n_items": train.n_items, "scale_retriever": "ease", "rows": [], "scaling": [],
                                   "homepage": figures})
    assert "| `ease` | all knobs |" in text and "100 ms at the median" in text


def test_store_reuse_trains_once_through_the_run_pipeline_and_finds_the_run_again(tmp_path):
    from recsys.data import load
    from recsys.data.split import SplitConfig
    from recsys.experiment import RunSpec
    from recsys.store import ExperimentStore

    figure = bench.store_reuse(SAMPLE, model="pop", seed=42, store_root=tmp_path / "store")
    assert figure["run_id"] == RunSpec.make(load(SAMPLE), SplitConfig(seed=42), "pop").run_id
    assert figure["ndcg_10"] == figure["ndcg_10_reused"] > 0
    [record] = ExperimentStore(tmp_path / "store").list()
    assert (record.run_id, record.status, record.model) == (figure["run_id"], "done", "pop")
    assert record.metrics["ndcg@10"] == figure["ndcg_10"]


def test_protocols_name_the_splits_the_tables_describe():
    assert bench.protocol_config("random", 7).to_dict() == {"method": "random", "test_fraction": 0.2, "n": 1,
                                                            "seed": 7, "positives": "all", "threshold": 4.0}
    assert bench.protocol_config("leave_last", 7).method == "leave_last"


def test_a_bench_rewrite_keeps_every_section_other_commands_write():
    from recsys.__main__ import SIMULATIONS_HEADING

    assert SIMULATIONS_HEADING in bench.KEPT_HEADINGS
    others = "".join(f"{heading} — x\n\nfigure {n}\n\n" for n, heading in enumerate(bench.KEPT_HEADINGS))
    markdown = "# Benchmarks\n\n## Models\n\nrows that bench rewrites\n\n" + others
    kept = bench.kept_sections(markdown)
    assert "rows that bench rewrites" not in kept
    for n, heading in enumerate(bench.KEPT_HEADINGS):
        assert f"{heading} — x\n\nfigure {n}\n" in kept

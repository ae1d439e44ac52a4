"""`python -m recsys simulate`: the per-round table and takeaway in text or JSON, the preset list, and
clear refusals (exit code 2, no traceback) for an unknown preset or knob."""

from __future__ import annotations

import json
import re

import pytest

from recsys.__main__ import main
from recsys.simulation import presets

# the course's order, as the page lists them
COURSE = ["popularity_trap", "exploration_tail", "offline_vs_online", "bandit_vs_ab", "position_bias", "stale_model"]

# wall-clock columns (a serving tier's compute time) differ between two runs of the same seed
TIMING = re.compile(r"(^|_)(seconds|ms)$")


def without_timings(record: dict) -> dict:
    return {name: value for name, value in record.items() if not TIMING.search(name)}


def few_rounds(preset) -> int | None:
    """The fewest rounds the preset allows, but at least 3 (None when it has no rounds knob)."""
    if preset.rounds_knob is None:
        return None
    field = next(f for f in preset.describe() if f["name"] == preset.rounds_knob)
    return max(3, int(field.get("low") or 1))


def test_list_names_every_preset_in_course_order(capsys):
    assert main(["simulate", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    keys = [line.split()[0] for line in lines]
    assert keys == list(presets.presets())
    assert [key for key in keys if key in COURSE] == COURSE
    for line, preset in zip(lines, presets.presets().values(), strict=True):
        assert preset.label in line


@pytest.mark.parametrize("key", COURSE)
def test_json_is_one_object_per_row_with_the_results_metric_names(key, capsys):
    preset = presets.get(key)
    rounds = few_rounds(preset)
    argv = ["simulate", key, "--json", "--seed", "3"] + ([] if rounds is None else ["--rounds", str(rounds)])
    assert main(argv) == 0
    captured = capsys.readouterr()
    objects = [json.loads(line) for line in captured.out.splitlines()]

    # the same preset, knobs and seed called directly: the CLI prints exactly its rows
    result = preset(seed=3, **({} if rounds is None else {preset.rounds_knob: rounds}))
    assert len(objects) == len(result.rounds)
    assert all(list(obj) == ["round", "series", *result.metrics] for obj in objects)
    # every figure but wall-clock timings is the same for the same seed
    assert [without_timings(obj) for obj in objects] == [without_timings(r) for r in json.loads(
        json.dumps(result.records()))]
    if rounds is not None:
        assert max(obj["round"] for obj in objects) == rounds
    # stdout is only JSON lines; the computed takeaway goes to stderr
    assert captured.err.strip() == result.takeaway


def test_text_output_is_the_table_and_the_takeaway(capsys):
    preset = presets.get("bandit_vs_ab")
    assert main(["simulate", "bandit_vs_ab", "--rounds", "6", "--set", "runs=20", "--set", "null_runs=100"]) == 0
    out = capsys.readouterr().out
    result = preset(seed=0, rounds=6, runs=20, null_runs=100)
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["round", "series"])
    assert lines[header].split()[2:] == " ".join(result.metrics).split()
    # one line per row of the table, then the extra tables under their titles, then the takeaway
    table = lines[header + 1:lines.index("", header)]
    assert len(table) == len(result.rounds)
    assert [int(line.split()[0]) for line in table] == result.rounds["round"].tolist()
    for title in result.tables:
        assert f"\n{title}\n" in out
    assert out.rstrip().endswith(result.takeaway)
    assert out.startswith(f"{preset.label} (bandit_vs_ab), seed 0: ")
    assert "rounds=6" in out.splitlines()[0] and "runs=20" in out.splitlines()[0]


@pytest.mark.parametrize(("argv", "message"), [
    (["simulate", "no_such_thing"], "Unknown simulation 'no_such_thing'"),
    (["simulate", "bandit_vs_ab", "--set", "colour=red"], "has no knob(s) ['colour']"),
    (["simulate", "bandit_vs_ab", "--set", "rounds"], "--set takes knob=value"),
    (["simulate", "bandit_vs_ab", "--set", "rounds=many"], "'rounds' must be a int"),
    (["simulate", "bandit_vs_ab", "--rounds", "100000"], "'rounds' must be at most"),
    (["simulate"], "Name the simulation to run"),
])
def test_bad_requests_exit_2_with_a_message_and_no_traceback(argv, message, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.err.startswith("error: ") and "Traceback" not in captured.err
    assert captured.out == ""


def test_bench_writes_the_simulations_section_and_keeps_the_others(tmp_path, monkeypatch, capsys):
    one = {"position_bias": presets.get("position_bias")}
    monkeypatch.setattr(presets, "presets", lambda: one)
    target = tmp_path / "benchmarks.md"
    target.write_text("# Benchmarks\n\n## Models\n\nkept\n\n## Simulations\n\nold figures\n\n## Later\n\nalso kept\n")
    assert main(["simulate", "--bench", "--out", str(tmp_path)]) == 0
    text = target.read_text()
    assert "old figures" not in text and "## Models\n\nkept\n" in text and "## Later\n\nalso kept\n" in text
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert len(rows) == 1
    cells = [cell.strip() for cell in rows[0].strip("|").split("|")]
    result = one["position_bias"](seed=0)
    assert cells[:4] == ["`position_bias`", one["position_bias"].label, str(result.rounds["round"].nunique()),
                         str(len(result.series))]
    assert float(cells[4]) >= 0 and float(cells[5]) >= 0  # numbers, whatever the machine
    assert "position_bias" in capsys.readouterr().out

"""Streamlit glue of the Simulate page: knob widgets from a preset's Knobs, charts of the per-round
table, the live view while rounds come in, and the results kept in session state.

Nothing here simulates: every number comes from ``recsys.simulation``.
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager

import altair as alt
import pandas as pd
import streamlit as st

from recsys.data.errors import DataError
from recsys.simulation.result import SimulationResult
from ui.charts import FIT_WIDTH
from ui.text import md_escape

CHART_HEIGHT = 240
# series colours: distinct hues (the theme's default pairs dark and light shades of one hue, so
# "A/B test (fixed horizon)" and "A/B test (peeking)" read as one line)
SERIES_SCHEME = "tableau10"
# live charts are redrawn at most this often: a preset can finish 50 rounds in a second, and
# sending every one to the browser would take longer than the simulation itself
LIVE_REDRAW_S = 0.25
# hosted mode: a run still going after this long stops at the end of its round (default runs take 0.2-1.5
# CPU seconds; the largest knobs of some presets take minutes)
HOSTED_BUDGET_S = 60.0
# results a visitor keeps (preset, knobs, seed → frames); a few dozen kB each
KEPT_RESULTS = 12
CHOSEN = "simulate_chosen"       # the preset last picked
HEADLINE = "headline figure"    # the live chart of a simulation that reports one number per series
RESULTS = "simulate_results"     # {result key: SimulationResult}
SHOWN = "simulate_shown"         # {preset key: result key of its latest run}
REMEMBERED = "simulate_knobs"    # {preset key: {"knobs": {...}, "seed": int}} as last submitted


# ---------------------------------------------------------------------- knob widgets
# words of knob names that read wrong when merely lower-cased
KNOB_WORDS = {"mmr": "MMR", "ctr": "CTR", "ucb": "UCB", "ipw": "IPW", "ab": "A/B", "ndcg": "NDCG", "lambda": "λ",
              "epsilon": "ε", "alpha": "α"}


def knob_label(name: str) -> str:
    """``n_items`` → "Number of items", ``mmr_lambda`` → "MMR λ", ``row_decay`` → "Row decay"."""
    words = name.split("_")
    if words[0] == "n" and len(words) > 1:
        words = ["number", "of", *words[1:]]
    label = " ".join(KNOB_WORDS.get(word, word) for word in words)
    return label if words[0] in KNOB_WORDS else label[:1].upper() + label[1:]  # ε stays ε, not Ε


def knob_widget(field: dict, value, key: str):
    """One widget for one knob, built from its ``param`` metadata: choices → select box, bool → checkbox,
    a number with both bounds → slider (log-scaled ones → number box), else a number or text box."""
    label, helptext = knob_label(field["name"]), field.get("help")
    low, high, choices = field.get("low"), field.get("high"), field.get("choices")
    if choices is not None:
        choices = list(choices)
        return st.selectbox(label, choices, index=choices.index(value) if value in choices else 0, help=helptext,
                            key=key)
    if isinstance(field["default"], bool):
        return st.checkbox(label, value=bool(value), help=helptext, key=key)
    if isinstance(field["default"], int):
        if low is not None and high is not None and not field.get("log"):
            step = int(field.get("step") or 1)
            return int(st.slider(label, int(low), int(high), int(value), step=step, help=helptext, key=key))
        return int(st.number_input(label, value=int(value), step=int(field.get("step") or 1), min_value=low,
                                   max_value=high, help=helptext, key=key))
    if isinstance(field["default"], float):
        step = float(field.get("step") or _float_step(low, high, float(value)))
        if low is not None and high is not None and not field.get("log"):
            # as many decimals as the step has: the default two showed a 0.046 click rate as 0.05
            return float(st.slider(label, float(low), float(high), float(value), step=step, help=helptext, key=key,
                                   format=f"%.{_decimals(step)}f"))
        return float(st.number_input(label, value=float(value), min_value=None if low is None else float(low),
                                     max_value=None if high is None else float(high), step=step, format="%g",
                                     help=helptext, key=key))
    return st.text_input(label, value=str(value), help=helptext, key=key)


def _decimals(step: float) -> int:
    """Decimals that show every multiple of ``step`` exactly (0.001 → 3, 0.05 → 2, 1.0 → 0)."""
    text = f"{step:.10f}".rstrip("0")
    return len(text.split(".")[1]) if "." in text else 0


def _float_step(low, high, value: float) -> float:
    """A hundredth of the range, rounded to 1, 2 or 5 times a power of ten (so slider values read cleanly)."""
    span = (high - low) if low is not None and high is not None else abs(value) or 1.0
    raw = span / 100.0
    power = 10 ** int(f"{raw:e}".split("e")[1])
    for multiple in (1, 2, 5, 10):
        if raw <= multiple * power:
            return float(multiple * power)
    return float(raw)


def knob_widgets(fields: list[dict], key_prefix: str, values: dict | None = None, columns: int = 3) -> dict:
    """A grid of widgets, one per knob, starting from ``values`` (else the defaults); returns {name: value}.
    Call inside an ``st.form`` so a change of knob reruns nothing until Run."""
    values = values or {}
    chosen = {}
    cols = st.columns(columns)
    for i, field in enumerate(fields):
        with cols[i % columns]:
            start = values.get(field["name"], field["default"])
            chosen[field["name"]] = knob_widget(field, start, f"{key_prefix}.{field['name']}")
    return chosen


# ---------------------------------------------------------------------- results in session state
def result_key(preset: str, knobs: dict, seed: int, extra: dict | None = None) -> str:
    """The same preset, knobs and seed (and arms, when runs are the arms) give the same rounds: they name
    the result."""
    named = f"{preset}|{json.dumps(knobs, sort_keys=True, default=str)}|{int(seed)}"
    return named if not extra else f"{named}|{json.dumps(extra, sort_keys=True, default=str)}"


def remembered(preset: str) -> dict:
    """The knobs and seed last submitted for ``preset`` this session ({} before the first run)."""
    return st.session_state.setdefault(REMEMBERED, {}).get(preset, {})


def remember(preset: str, knobs: dict, seed: int, arms: dict | None = None, world: str | None = None,
             policy: dict | None = None) -> None:
    st.session_state.setdefault(REMEMBERED, {})[preset] = {"knobs": dict(knobs), "seed": int(seed), "arms": arms,
                                                           "world": world, "policy": policy}


def stored(key: str) -> SimulationResult | None:
    return st.session_state.setdefault(RESULTS, {}).get(key)


def keep(preset: str, key: str, result: SimulationResult) -> None:
    """Keep ``result`` (plain frames, no model) and make it ``preset``'s shown one; the oldest go first."""
    results = st.session_state.setdefault(RESULTS, {})
    results.pop(key, None)
    results[key] = result
    while len(results) > KEPT_RESULTS:
        results.pop(next(iter(results)))
    st.session_state.setdefault(SHOWN, {})[preset] = key


def shown(preset: str) -> tuple[str, SimulationResult] | None:
    """``preset``'s latest result this session, if it is still kept."""
    key = st.session_state.setdefault(SHOWN, {}).get(preset)
    result = stored(key) if key else None
    return (key, result) if result is not None else None


# ---------------------------------------------------------------------- one run per visitor at a time
_RUNNING: dict[str, threading.Lock] = {}
_RUNNING_GUARD = threading.Lock()


@contextmanager
def one_at_a_time(owner: str):
    """Yield True while ``owner`` runs a simulation, False when one of theirs already runs (another tab).

    A rerun of the same tab interrupts the running script at its next progress call, so only a
    second tab or window can overlap; on a shared server that would double one visitor's CPU.
    """
    with _RUNNING_GUARD:
        lock = _RUNNING.setdefault(owner, threading.Lock())
    acquired = lock.acquire(blocking=False)
    try:
        yield acquired
    finally:
        if acquired:
            lock.release()


# ---------------------------------------------------------------------- charts
def long_metrics(rounds: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """(round, series, metric, value) rows: one field name for every chart, whatever characters the
    metric's own name has (vega-lite would read a '.' in a field name as a nested field)."""
    frame = rounds.melt(id_vars=["round", "series"], value_vars=metrics, var_name="metric", value_name="value")
    return frame.dropna(subset=["value"])


def metric_chart(frame: pd.DataFrame, metric: str, series: list[str], rounds_total: int,
                 description: str | None = None) -> alt.Chart:
    """One metric over the rounds, a line per series (colours fixed by ``series`` so every chart agrees),
    titled with the metric's name and, under it, what it measures."""
    # entries in up to two columns under the plot: side by side, long series names ran past a narrow
    # chart's edge, and one a line made five series' legend taller than the plot
    color = alt.Color("series:N", title=None, sort=series, scale=alt.Scale(domain=series, scheme=SERIES_SCHEME),
                      legend=alt.Legend(orient="bottom", direction="horizontal", columns=legend_columns(series),
                                        labelLimit=320, columnPadding=16))
    tooltip = [alt.Tooltip("series:N", title="series"), alt.Tooltip("round:Q", title="round"),
               alt.Tooltip("value:Q", title=metric, format=",.4g")]
    if rounds_total <= 1:  # nothing unfolds: compare the series side by side
        chart = alt.Chart(frame).mark_bar().encode(
            x=alt.X("series:N", title="Series", sort=series, axis=alt.Axis(labelAngle=0, labelLimit=160)),
            y=alt.Y("value:Q", title=metric), color=color, tooltip=tooltip)
    else:
        chart = alt.Chart(frame).mark_line(point=alt.OverlayMarkDef(size=24)).encode(
            x=alt.X("round:Q", title="Round", scale=alt.Scale(domain=[1, max(rounds_total, 2)]),
                    axis=alt.Axis(tickMinStep=1, format="d")),
            y=alt.Y("value:Q", title=metric, scale=alt.Scale(zero=False)), color=color, tooltip=tooltip)
    title = alt.TitleParams(metric, subtitle=_wrap(description) if description else [], anchor="start",
                            subtitleColor="#6b6f76")
    return chart.properties(title=title, height=CHART_HEIGHT, autosize=FIT_WIDTH)


def legend_columns(series: list[str]) -> int:
    """Two legend columns when the names are short; one when two long names would not fit half the page
    side by side (the second column ran past the chart's edge)."""
    return 2 if len(series) > 1 and max(len(str(s)) for s in series) <= 16 else 1


def _wrap(text: str, width: int = 50) -> list[str]:
    """A subtitle in lines that fit half the page (vega-lite does not wrap titles)."""
    import textwrap

    return textwrap.wrap(text, width)


def charted_metrics(rounds: pd.DataFrame, metrics: list[str]) -> list[str]:
    """The metrics worth a chart: one that is the same for every series in every round (visitors so far,
    page views logged) compares nothing, and stays in the round table."""
    n_series = rounds["series"].nunique()
    if n_series < 2:
        return list(metrics)
    by_round = rounds.groupby("round")[metrics]
    same = (by_round.nunique(dropna=True) == 1) & (by_round.count() == n_series)
    return [m for m in metrics if not same[m].all()]


def draw_charts(rounds: pd.DataFrame, metrics: list[str], series: list[str], rounds_total: int,
                per_row: int = 2) -> None:
    """A chart per metric, ``per_row`` to a row (pass ``charted_metrics`` of the whole run)."""
    from recsys.simulation.presets import metric_descriptions

    descriptions = metric_descriptions()
    frame = long_metrics(rounds, metrics)
    for start in range(0, len(metrics), per_row):
        cols = st.columns(per_row)
        for col, metric in zip(cols, metrics[start:start + per_row], strict=False):
            part = frame[frame["metric"] == metric]
            if not part.empty:
                col.altair_chart(metric_chart(part, metric, series, rounds_total, descriptions.get(metric)),
                                 width="stretch")


# ---------------------------------------------------------------------- the live view
def figure_rows(done: int, figures: dict) -> list[dict]:
    """The progress callback's latest figures as per-round rows.

    Simulations report the round's rows ({series: {metric: number}}), or one headline number per
    series ({series: number}), drawn as a metric called HEADLINE; anything else is not charted live.
    """
    if not isinstance(figures, dict) or not figures:
        return []
    if all(isinstance(v, dict) for v in figures.values()):
        return [{"round": done, "series": str(name), **_numbers(values)} for name, values in figures.items()]
    return [{"round": done, "series": str(name), HEADLINE: value} for name, value in _numbers(figures).items()]


def _numbers(values: dict) -> dict:
    return {str(k): float(v) for k, v in values.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


class LiveView:
    """The progress callback: a progress bar and the charts so far, redrawn as rounds come in.

    With ``budget_s`` (hosted mode) a run still going after that many seconds is stopped at the end of
    a round with a message, so one visitor's largest knobs cannot hold a shared server's core.
    """

    def __init__(self, label: str, budget_s: float | None = None):
        self.label = label
        self.budget_s = budget_s
        self.started = time.monotonic()
        self.bar = st.progress(0.0, text=f"{label}: starting…")
        self.charts = st.empty()
        self.rows: list[dict] = []
        self.drawn_at = 0.0

    def __call__(self, done: int, total: int, figures: dict) -> None:
        if self.budget_s is not None and done < total and time.monotonic() - self.started > self.budget_s:
            raise DataError(f"This simulation was still running after {self.budget_s:.0f} s, the limit on this "
                            f"shared server, at round {done} of {total}. Lower the rounds or the sizes and run "
                            "again (on your own machine there is no limit).")
        self.rows.extend(figure_rows(done, figures))
        self.bar.progress(min(1.0, done / max(total, 1)), text=f"{self.label}: round {done} of {total}")
        now = time.monotonic()
        if self.rows and (done >= total or now - self.drawn_at >= LIVE_REDRAW_S):
            self.drawn_at = now
            frame = pd.DataFrame(self.rows)
            metrics = [c for c in frame.columns if c not in ("round", "series")]
            series = list(dict.fromkeys(frame["series"]))
            with self.charts.container():
                draw_charts(frame, charted_metrics(frame, metrics), series, total)

    def clear(self) -> None:
        self.bar.empty()
        self.charts.empty()


# ---------------------------------------------------------------------- summary figures
def summary_value(value) -> str:
    """Headline figures as people read them: integers with separators, others to four significant digits."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.4g}"


def summary_table(summary: dict) -> pd.DataFrame:
    """(figure, value) rows, the names as the result and ``--json`` spell them, the values readable."""
    return pd.DataFrame({"figure": list(summary), "value": [summary_value(v) for v in summary.values()]})


# ---------------------------------------------------------------------- a finished run
def show_result(result: SimulationResult, result_id: str, csv_text: str) -> None:
    """The takeaway, the headline figures, a chart per metric up to the round the slider picks, that round's
    table, the CSV download and any extra tables."""
    st.info(md_escape(result.takeaway), icon=":material/lightbulb:")
    if result.summary:  # a bandit run has two dozen: a compact table, not a wall of big numbers
        with st.expander("The figures behind the takeaway"):
            st.dataframe(summary_table(result.summary), hide_index=True, width="stretch")

    rounds = result.rounds
    numbers = sorted(int(r) for r in rounds["round"].unique())
    upto = numbers[-1] if numbers else 0
    if len(numbers) > 1:  # keyed by the run: a new run starts at its own last round
        upto = st.select_slider("Show rounds up to", numbers, value=numbers[-1], key=f"simulate_step.{result_id}",
                                help="Step back through the run: the charts and the table stop at this round.")
    # which metrics get a chart is decided on the whole run, so stepping back never drops one
    draw_charts(rounds[rounds["round"] <= upto], charted_metrics(rounds, result.metrics), result.series,
                len(numbers))

    st.subheader(f"Round {upto}" if len(numbers) > 1 else "Figures")
    st.dataframe(rounds[rounds["round"] == upto].drop(columns="round"), hide_index=True, width="stretch")
    st.download_button("Download the per-round table (CSV)", csv_text, mime="text/csv", icon=":material/download:",
                       file_name=f"simulation-{result.preset}-seed{result.seed}.csv", key=f"simulate_csv.{result_id}")
    for title, table in result.tables.items():
        st.subheader(md_escape(title))
        st.dataframe(table, hide_index=True, width="stretch")


# ---------------------------------------------------------------------- trained runs as a bandit's arms
ARMS_PRESET = "bandit_vs_ab"
ARM_SLOTS = 10            # tiles each arm shows a visitor
ARM_USERS = 1000          # people of the dataset placed in the world (seeded sample): bounds the work
# people of the dataset placed in a feedback loop's world: every round scores and ranks all of them against
# every title (300 x 2,000 on the sample: 20 rounds in about 6-8 CPU s, like the synthetic default)
LOOP_USERS = 300


def arm_widgets(trained: dict[str, dict], remembered_choice: dict | None) -> dict | None:
    """Inside the bandit form: optionally make two or more trained runs the arms, in a world whose truth is
    another run's scores. Returns the choice, or None when the knob click rates are to be used."""
    from recsys.simulation.bandits import MAX_ARMS
    from recsys.simulation.clicks import EXAMINATION_KINDS

    names = list(trained)
    last = remembered_choice or {}
    with st.expander("Arms from trained runs", expanded=bool(last)):
        use = st.checkbox("Use trained runs of this dataset as the arms", value=bool(last), key="simulate_arms_use",
                          help="Each arm shows every person its model's top 10; its click rate is what the world "
                               "below would click. The click-rate knobs are then not used.")
        arms = st.multiselect("Arms (arm 1 is the control)", names, max_selections=MAX_ARMS, key="simulate_arms_runs",
                              default=[n for n in last.get("arms", names[:2]) if n in names])
        default_truth = last.get("truth") if last.get("truth") in names else names[-1]
        truth = st.selectbox("The world's truth", names, index=names.index(default_truth), key="simulate_arms_truth",
                             help="This run's scores are taken as what people really like. An arm that is the "
                                  "truth itself is bound to win: pick a third run.")
        kinds = list(EXAMINATION_KINDS)
        examination = st.selectbox("Examination", kinds, key="simulate_arms_examination",
                                   index=kinds.index(last.get("examination", "cascade")),
                                   help="none: every tile is looked at; cascade: down the list, each next tile "
                                        "less likely; grid: the homepage's rows and columns.")
    return {"arms": arms, "truth": truth, "examination": examination} if use else None


def arm_rates(trained: dict[str, dict], choice: dict, seed: int) -> list[float]:
    """The chosen runs' click rates in a world built from the truth run's scores on a seeded sample of the
    current split's people (``recsys.simulation``: World.from_model, bandits.arm_rates_in_world)."""
    from recsys.simulation.bandits import arm_rates_in_world

    if len(choice["arms"]) < 2:
        raise DataError("Pick at least two trained runs as the arms, or clear 'Use trained runs'.")
    models = stored_models(trained, [*choice["arms"], choice["truth"]])
    world, users = world_from_run(models[choice["truth"]], seed)
    rates = arm_rates_in_world([models[name] for name in choice["arms"]], world, k=ARM_SLOTS,
                               examination_kind=choice["examination"], users=users)
    return [float(rate) for rate in rates]


def stored_models(trained: dict[str, dict], names: list[str]) -> dict:
    """{run name: fitted model} from the experiment store (loaded once per run, shared read-only)."""
    from ui import runs

    models = {}
    for name in dict.fromkeys(names):
        entry = runs.result(trained[name]) if name in trained else None
        if entry is None or entry.get("model") is None:
            raise DataError(f"The run {name!r} is no longer stored with its model; pick another run.")
        models[name] = entry["model"]
    return models


def world_from_run(model, seed: int, people: int = ARM_USERS, **calibration):
    """(World whose truth is ``model``'s scores for a seeded sample of at most ``people`` people of the current
    split, those people's dataset codes)."""
    import numpy as np

    from recsys.simulation.world import World
    from ui import data

    train = data.current_split().train
    rng = np.random.default_rng(seed)
    users = np.sort(rng.choice(train.n_users, size=min(people, train.n_users), replace=False))
    return World.from_model(model, train, users=users, **calibration), users


# ---------------------------------------------------------------------- a trained run as the world
def takes_world(preset) -> bool:
    """Whether the preset's simulation accepts ``world=`` (a World in place of its synthetic one)."""
    return _takes(preset, "world")


def takes_trained(preset) -> bool:
    """Whether the preset's simulation accepts ``trained=`` (a trained run as the loop's model)."""
    return _takes(preset, "trained")


def _takes(preset, name: str) -> bool:
    import inspect

    parameter = inspect.signature(preset.run).parameters.get(name)
    return parameter is not None and parameter.kind is inspect.Parameter.KEYWORD_ONLY and parameter.default is None


def world_widgets(trained: dict[str, dict], remembered_name: str | None) -> str | None:
    """Inside the form: optionally take the world's truth from a trained run. Returns its name or None."""
    names = list(trained)
    with st.expander("World from a trained run", expanded=remembered_name is not None):
        use = st.checkbox("Take the world's tastes from a trained run of this dataset", key="simulate_world_use",
                          value=remembered_name is not None,
                          help="People and titles are the dataset's (up to 1,000 people, sampled with the seed); "
                               "what they really like is the run's scores. The knobs that size the synthetic "
                               "world are then not used.")
        index = names.index(remembered_name) if remembered_name in names else 0
        name = st.selectbox("The world's truth", names, index=index, key="simulate_world_run")
    return name if use else None


# how a trained run drives a loop, as people choose it (recsys.simulation.loop.TrainedPolicy's modes)
POLICY_MODES = {"auto": "Automatic: refit the fast models, the others as a prior",
                "refit": "Refit its model on the loop's clicks every round",
                "prior": "Its scores on this dataset as a fixed prior, plus the loop's clicks"}


def policy_widgets(trained: dict[str, dict], remembered_choice: dict | None) -> dict | None:
    """Inside a loop preset's form: optionally make a trained run the system's model. Returns
    {"run": name, "mode": mode} or None (the model knob's model is retrained on the log)."""
    names = list(trained)
    last = remembered_choice or {}
    with st.expander("System's model from a trained run", expanded=bool(last)):
        use = st.checkbox("Let a trained run of this dataset be the recommender in the loop", value=bool(last),
                          key="simulate_policy_use",
                          help="Every policy ranks with this run's model instead of the model knob's.")
        index = names.index(last["run"]) if last.get("run") in names else 0
        name = st.selectbox("The system's model", names, index=index, key="simulate_policy_run")
        modes = list(POLICY_MODES)
        mode = st.selectbox("How it learns from the loop", modes, format_func=POLICY_MODES.get,
                            index=modes.index(last.get("mode", "auto")), key="simulate_policy_mode",
                            help="Refit: its algorithm and hyperparameters retrained on the clicks the loop logged "
                                 "(works in the synthetic world too). Prior: what it learned from this dataset, "
                                 "fixed, added to a co-click model of the loop's clicks (needs the world from a "
                                 "trained run; fast for every model). Automatic refits most popular and the kNN "
                                 "models and uses the prior for slower ones.")
    return {"run": name, "mode": mode} if use else None


def run_with_runs(preset, knobs: dict, seed: int, progress, trained: dict[str, dict], world_name: str | None,
                  policy: dict | None = None):
    """``preset`` with its knobs, played in a world built from the trained run ``world_name`` (else its own
    synthetic one), with the run ``policy["run"]`` as the loop's model when given."""
    from recsys.simulation.loop import TrainedPolicy

    models = stored_models(trained, [n for n in (world_name, policy and policy["run"]) if n])
    settings = preset.knobs(**knobs)
    extra, users = {}, None
    if world_name is not None:
        # the preset's own click calibration, where it has one, applies to the run's world too
        calibration = {k: getattr(settings, k) for k in ("base_rate",) if hasattr(settings, k)}
        people = LOOP_USERS if takes_trained(preset) else ARM_USERS
        extra["world"], users = world_from_run(models[world_name], seed, people=people, **calibration)
    if policy is not None:
        extra["trained"] = TrainedPolicy(models[policy["run"]], users=users, mode=policy["mode"])
    return preset.run(settings, seed=seed, progress=progress, **extra)


def run_budget() -> float | None:
    """Seconds a simulation may run on this server: HOSTED_BUDGET_S when hosted, no limit on a laptop."""
    from recsys.hosting import config

    return HOSTED_BUDGET_S if config().hosted else None

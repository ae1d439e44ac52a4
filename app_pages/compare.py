"""Compare page: every trained run on the current split, side by side: table, trade-offs, segments, sweeps.

Computation lives in recsys.evaluation (tradeoffs, caveats, sweep); this page reads widgets,
calls it and renders. The view is mirrored in the URL (ui.share) so a link reproduces it.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import streamlit as st

from recsys.data.errors import DataError
from recsys.evaluation import compare_reports, curve, tradeoffs
from recsys.evaluation.caveats import caveats
from recsys.evaluation.sampled import FULL, full_vs_sampled, rank_changes, sampled_label
from recsys.evaluation.sweep import FitCancelled, default_range, numeric_params, sweep, sweep_values
from recsys.export import safe_csv
from recsys.models import get, registry
from ui import charts, data, runs, share, state
from ui.errors import attempt
from ui.text import md_escape

st.title("Compare")

for message in share.apply_link():
    st.warning(message)  # ui.share escapes what the link itself carries

visible = runs.visible_runs()
others = [r for r in state.runs() if runs.result(r) is not None and r not in visible]
if others:
    st.caption(f"{len(others)} run(s) on another dataset or split are hidden: "
               "models are only comparable on the same test set.")
if not visible:
    st.info("No trained models on this dataset and split yet. Train some on the Train page.")
    st.page_link("app_pages/train.py", label="Go to Train", icon=":material/model_training:")
    st.stop()


def run_name(spec: dict) -> str:
    """Label plus the parameters that differ from another run of the same model."""
    same_model = [r for r in visible if r["model"] == spec["model"]]
    if len(same_model) == 1:
        return spec["label"]
    differing = {k: v for k, v in spec["params"].items() if any(r["params"].get(k) != v for r in same_model)}
    return f"{spec['label']} ({', '.join(f'{k}={v}' for k, v in differing.items())})"


def p_value(p: float) -> str:
    """'= 2.2e-05', or '< 1e-300' where the p-value underflowed to 0 (printing 'p = 0' would claim certainty)."""
    return f"= {p:.3g}" if p > 0 else "< 1e-300"


def choose_runs() -> list[dict]:
    """The runs to compare: all by default; a run trained since the last visit joins the selection."""
    ss = st.session_state
    ids = [spec["run_id"] for spec in visible]
    known = ss.get("_compare_known", [])
    chosen = [r for r in ss.get("compare_runs", ids) if r in ids]
    ss["compare_runs"] = chosen + [r for r in ids if r not in known and r not in chosen]
    ss["_compare_known"] = ids
    by_id = {spec["run_id"]: spec for spec in visible}
    picked = st.multiselect("Runs to compare", ids, format_func=lambda r: run_name(by_id[r]), key="compare_runs")
    return [by_id[r] for r in picked]


# Streamlit forgets a widget's value when a run does not draw it; these live in views that may be
# hidden, and the link needs them, so carry them over explicitly.
for carried in ("compare_user", "compare_accuracy"):
    if carried in st.session_state:
        st.session_state[carried] = st.session_state[carried]
selected = choose_runs()
if not selected:
    st.info("Pick at least one run above to compare.")
    st.stop()

names = [run_name(spec) for spec in selected]
entries = {name: runs.result(spec) for name, spec in zip(names, selected)}
reports = {name: entry["report"] for name, entry in entries.items()}
fit_seconds = {name: entry["fit_seconds"] for name, entry in entries.items()}
st.session_state.setdefault("compare_k", 10)
k = st.select_slider("K (length of the recommended list)", options=list(runs.EVAL_K), key="compare_k")
try:
    split = data.current_split()
except DataError as problem:
    st.error(str(problem))
    st.stop()


# ---------------------------------------------------------------------- metrics table
TABLE_NAMES = {"run": "model", "fit_seconds": "fit s", "score_seconds": "score s"}


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """Means with their interval as a "low – high" column beside each; low/high columns folded in."""
    out = pd.DataFrame(index=table.index)
    for column in table.columns:
        if column.endswith((" low", " high")):
            continue
        out[TABLE_NAMES.get(column, column)] = table[column]
        if f"{column} low" in table.columns:
            low, high = table[f"{column} low"], table[f"{column} high"]
            out[f"{column} 95% CI"] = [f"{a:.4f} – {b:.4f}" if np.isfinite(a) else "" for a, b in zip(low, high)]
    return out


def mark_best(shown: pd.DataFrame, table: pd.DataFrame):
    """Green background on each column's best run, in the metric's own direction."""
    best = {TABLE_NAMES.get(c, c): rows for c, rows in tradeoffs.best_per_column(table).items()}

    def colour(column: pd.Series) -> list[str]:
        rows = best.get(column.name, [])
        return ["background-color: #c8f7c5" if i in rows else "" for i in range(len(column))]

    numeric = [c for c in shown.columns if shown[c].dtype.kind == "f"]
    return shown.style.apply(colour, axis=0).format(precision=4, subset=numeric, na_rep="–")


table = tradeoffs.metrics_table(reports, k, fit_seconds)
shown = display_table(table)
st.subheader(f"Metrics at K = {k}")
for caveat in caveats(split, reports, f"ndcg@{k}"):
    st.warning(md_escape(caveat))  # plain prose that names runs
st.caption("Green marks the best run per column (lowest for ARP, Gini, RMSE/MAE and times). Full ranking over the "
           "catalogue; training items excluded. Intervals: 95% bootstrap over users. ARP = average training "
           "popularity of recommended items; Gini = how unequally exposure is spread over items; tail_share = "
           "share of recommendations outside the most popular 20% of items. Click a header to sort.")
st.dataframe(mark_best(shown, table), hide_index=True, width="stretch",
             column_config={"model": st.column_config.TextColumn("model", pinned=True)})

per_user = tradeoffs.per_user_metrics(reports, split.train, k)
specs_by_name = dict(zip(names, selected))


def metrics_json() -> str:
    return json.dumps(tradeoffs.metrics_records(reports, specs_by_name, fit_seconds), indent=2)


# downloads are built on click (deferred), not on every rerun of the page; a click must not rerun the
# script, or the rerun replaces the deferred file before the browser fetches it. CSV text cells that a
# spreadsheet would run as formulas (ids and names from uploaded data) are neutralised.
with st.container(horizontal=True):
    st.download_button("Metrics (CSV)", lambda: safe_csv(table), "metrics.csv", "text/csv",
                       key="download_metrics", icon=":material/download:", on_click="ignore")
    st.download_button("Metrics (JSON)", metrics_json, "metrics.json", "application/json",
                       key="download_metrics_json", icon=":material/download:", on_click="ignore")
    st.download_button("Per-user metrics (CSV)", lambda: safe_csv(per_user), "per_user_metrics.csv",
                       "text/csv", key="download_per_user", icon=":material/download:", on_click="ignore")


# ---------------------------------------------------------------------- charts and views
exported: dict[str, object] = {}  # chart title -> chart, for the export buttons at the end


def show(chart, container=st) -> None:
    exported[_title(chart)] = chart
    container.altair_chart(chart, width="stretch")


def _title(chart) -> str:
    title = chart.title if isinstance(chart.title, str) else getattr(chart.title, "text", "chart")
    return str(title)


ACCURACY_LABELS = {"ndcg": "NDCG", "recall": "Recall", "precision": "Precision", "map": "MAP", "mrr": "MRR",
                   "hit": "Hit rate"}


def choose_accuracy() -> tuple[str, str]:
    """The accuracy metric the trade-off, segment and sweep views use: (column, title)."""
    st.session_state.setdefault("compare_accuracy", "ndcg")
    metric = st.radio("Accuracy metric", list(ACCURACY_LABELS), horizontal=True, format_func=ACCURACY_LABELS.get,
                      key="compare_accuracy")
    return f"{metric}@{k}", f"{ACCURACY_LABELS[metric]}@{k}"


def overview_view() -> None:
    metric_choice = st.radio("Curve metric", ["ndcg", "recall", "precision", "hit", "coverage"], horizontal=True,
                             key="compare_curve_metric")
    curves = pd.concat([curve(rep, metric_choice).assign(run=name) for name, rep in reports.items()])
    left, right = st.columns(2)
    show(charts.metric_curves(curves, metric_choice), left)
    ci = pd.DataFrame([{"run": name, "mean": rep.means[f"ndcg@{k}"], "low": rep.ci[f"ndcg@{k}"][0],
                        "high": rep.ci[f"ndcg@{k}"][1]} for name, rep in reports.items()])
    show(charts.bars_with_ci(ci, f"NDCG@{k}"), right)
    left, right = st.columns(2)
    cov = pd.DataFrame({"run": list(reports),
                        "coverage": [rep.list_level[f"coverage@{k}"] for rep in reports.values()]})
    show(charts.simple_bars(cov, "coverage", f"Catalogue coverage@{k} (share of items ever recommended)", ".1%"),
         left)
    nov = pd.DataFrame({"run": list(reports), "novelty": [rep.means[f"novelty@{k}"] for rep in reports.values()]})
    show(charts.simple_bars(nov, "novelty", f"Novelty@{k} (bits of surprise per item)", ".2f"), right)
    if len(reports) >= 2:
        paired_test_section()


def paired_test_section() -> None:
    st.subheader("Is the difference real?")
    c1, c2 = st.columns(2)
    a = c1.selectbox("Model A", list(reports), index=0, key="compare_a")
    b = c2.selectbox("Model B", list(reports), index=1, key="compare_b")
    if a == b:
        st.caption("Pick two different runs.")
        return
    test = compare_reports(reports[a], reports[b], f"ndcg@{k}", names=(md_escape(a), md_escape(b)))
    st.write(test["sentence"])
    d = abs(test["cohens_d"])
    size = "negligible" if d < 0.2 else "small" if d < 0.5 else "medium" if d < 0.8 else "large"
    st.caption(f"Paired t-test p {p_value(test['t_pvalue'])} · Wilcoxon signed-rank p "
               f"{p_value(test['wilcoxon_pvalue'])} · effect size |d| = {d:.2f} ({size}; 0.2 small, 0.5 medium, "
               f"0.8 large) over {test['n']:,} users.")
    if size == "negligible" and test["t_pvalue"] < 0.05:
        st.caption("With this many users even a negligible difference is detectable: it is real, but too small "
                   "to matter to most people.")


def tradeoffs_view() -> None:
    accuracy_column, accuracy_title = choose_accuracy()
    st.caption("A run is on the Pareto front (filled points, joined by the dashed line) when no other run is better "
               "on both axes at once: every run off the front is beaten outright, so the real choice is among the "
               "front's runs.")
    other_axes = ((f"coverage@{k}", f"Coverage@{k}", "Accuracy vs catalogue coverage", "%"),
                  (f"novelty@{k}", f"Novelty@{k} (bits)", "Accuracy vs novelty", ",.2f"),
                  (f"arp@{k}", f"ARP@{k} (lower = less popularity bias)", "Accuracy vs popularity bias", ",.0f"))
    for column, (other, other_title, title, fmt) in zip(st.columns(3), other_axes):
        front = tradeoffs.pareto_frame(table, accuracy_column, other)
        show(charts.tradeoff_scatter(front, accuracy_column, other, accuracy_title, other_title, title, fmt), column)
    st.subheader("Which items get exposure?")
    exposure = tradeoffs.bucket_exposure(reports, split.train, split.test, k)
    show(charts.exposure_bars(exposure, k))
    sizes = exposure.drop_duplicates("bucket")
    st.caption("Items sorted from most to least popular in training: the head holds the items that make up the "
               "first half of all training interactions, the mid the next 30%, the tail the last 20% and items "
               "nobody consumed (" + ", ".join(f"{r.bucket}: {r.items:,} items" for r in sizes.itertuples()) +
               "). A model without popularity bias recommends each bucket about as often as people consumed it.")


def users_view() -> None:
    accuracy_column, accuracy_title = choose_accuracy()
    segments = tradeoffs.segment_metrics(reports, split.train, accuracy_column, n_boot=500)
    left, right = st.columns(2)
    show(charts.segment_bars(segments, accuracy_title), left)
    show(charts.distribution_boxes(tradeoffs.distribution_summary(per_user, accuracy_column), accuracy_title),
         right)
    counts = segments.drop_duplicates("segment")
    st.caption("Users are split at the terciles of their training-interaction counts (the thresholds adapt to the "
               "data): " + "; ".join(f"{row.segment}: {row.users:,} users with {row.low_count}–{row.high_count} "
                                     "interactions"
                                     for row in counts.itertuples())
               + ". Whiskers are 95% bootstrap intervals; a segment with few users gets a wide one. Right: the box "
               "holds the middle half of users, the white tick is the median, the diamond the mean, the line runs "
               "to the most extreme users within 1.5 box-lengths.")
    st.subheader("One person's lists")
    one_person()


# ---------------------------------------------------------------------- one person
def one_person() -> None:
    """Pick a test user: their metrics and top-K list under each run, side by side."""
    first = next(iter(reports.values()))
    user_ids = [str(u) for u in split.train.user_ids[first.users]]
    asked = st.session_state.get("compare_user")
    if asked not in user_ids:
        if asked is not None:  # e.g. a link naming a user this split does not evaluate
            st.warning(f"User {md_escape(asked)} is not among the {len(user_ids):,} evaluated test users; showing "
                       f"user {md_escape(user_ids[0])} instead.")
        st.session_state["compare_user"] = user_ids[0]
    user = st.selectbox("Test user", user_ids, key="compare_user",
                        help="Any user the runs were evaluated on; the link below remembers the choice.")
    code = int(first.users[user_ids.index(user)])
    lists = {}
    for name, report in reports.items():
        row = np.flatnonzero(report.users == code)
        if len(row) == 0:
            continue
        items = report.recommended[row[0], :k]
        titles = split.train.item_titles(items[items >= 0])
        hits = report.hits[row[0], :k][items >= 0]
        lists[f"{name} (NDCG {report.per_user[f'ndcg@{k}'][row[0]]:.3f})"] = [
            f"✓ {t}" if hit else str(t) for t, hit in zip(titles, hits)]
    width = max(len(v) for v in lists.values())
    frame = pd.DataFrame({name: v + [""] * (width - len(v)) for name, v in lists.items()},
                         index=pd.RangeIndex(1, width + 1, name="rank"))
    st.dataframe(frame, width="stretch")
    st.caption(f"✓ = the user consumed the item in the test set. User {md_escape(user)} has "
               f"{int(split.train.user_activity[code]):,} training interactions.")


# ---------------------------------------------------------------------- sweep
def sweep_inputs() -> dict | None:
    """Model and parameter outside the form (the parameter list follows the model), the range inside it."""
    sweepable = sorted((key for key in registry if numeric_params(key)), key=lambda key: get(key).label)
    c1, c2 = st.columns(2)
    st.session_state.setdefault("compare_sweep_model", "pure_svd" if "pure_svd" in sweepable else sweepable[0])
    model_key = c1.selectbox("Model", sweepable, format_func=lambda key: get(key).label, key="compare_sweep_model")
    params = {p["name"]: p for p in numeric_params(model_key)}
    name = c2.selectbox("Hyperparameter", list(params), key=f"compare_sweep_param_{model_key}",
                        help="Numeric hyperparameters only; the others keep their defaults.")
    meta = params[name]
    low_default, high_default = default_range(model_key, name)
    is_int = meta["type"] == "int"
    with st.form("compare_sweep_form"):
        c1, c2, c3, c4 = st.columns(4)
        low = c1.number_input("From", value=low_default, key=f"compare_sweep_low_{model_key}_{name}",
                              **({"step": 1} if is_int else {"format": "%.4g"}))
        high = c2.number_input("To", value=high_default, key=f"compare_sweep_high_{model_key}_{name}",
                               **({"step": 1} if is_int else {"format": "%.4g"}))
        points = c3.slider("Points", 2, 8, 4, key="compare_sweep_points")
        log = c4.checkbox("Log spacing", value=bool(meta.get("log")), key=f"compare_sweep_log_{model_key}_{name}")
        submitted = st.form_submit_button("Run sweep", type="primary")
    if not submitted:
        return None
    return {"model": model_key, "param": name, "low": low, "high": high, "points": points, "log": log}


def run_sweep(request: dict, metric: str, metric_title: str) -> None:
    """Train the points with a progress bar; keep only the result table (never models) in the session."""
    label = get(request["model"]).label
    try:
        values = sweep_values(request["model"], request["param"], request["low"], request["high"],
                              request["points"], log=request["log"])
    except ValueError as problem:
        st.error(f"{problem}")
        return
    bar = st.progress(0.0, text=f"{label}: starting the sweep…")

    def progress(step: int, total: int, info: dict) -> None:
        where = f"{request['param']} = {info['value']}" if "value" in info else "done"
        epoch = f", epoch {info['epoch']}/{info['epochs']}" if "epoch" in info else ""
        bar.progress(min(1.0, step / max(total, 1)), text=f"{label}: model {min(step + 1, total)} of {total} "
                                                         f"({where}{epoch})")

    try:
        frame = sweep(request["model"], request["param"], values, split, metric,
                      seed=state.split_config().seed, progress=progress)
    except FitCancelled:
        bar.empty()
        st.warning("The sweep was cancelled; nothing was kept.")
        return
    except (DataError, ValueError) as problem:
        bar.empty()
        st.error(str(problem))
        return
    bar.empty()
    st.session_state["compare_sweep_result"] = {**request, "metric": metric, "metric_title": metric_title,
                                                "frame": frame}


def show_sweep(result: dict) -> None:
    frame, param = result["frame"], result["param"]
    label = get(result["model"]).label
    st.caption(f"{label}, {len(frame)} values of {param}. Validation: the split's validation part, or 10% of each "
               "user's training interactions held out for it (the sweep's models train on the other 90%). Pick a "
               "value by the validation curve: choosing by test would tune on the test set.")
    left, right = st.columns(2)
    show(charts.sweep_metric(frame, param, result["metric_title"], result["log"]), left)
    if frame["loss"].notna().any():
        show(charts.sweep_loss(frame, param, result["log"]), right)
    else:
        right.info(f"{label} reports no training loss (it is fitted in closed form), so only the metric is shown.")
    st.dataframe(frame.rename(columns={"value": param, "valid": f"valid {result['metric']}",
                                       "test": f"test {result['metric']}", "loss": "final loss",
                                       "fit_seconds": "fit s"}), hide_index=True, width="stretch")


def sweep_view() -> None:
    accuracy_column, accuracy_title = choose_accuracy()
    st.caption("Trains one model per value on this split (seeded, so the values are the only difference) and "
               f"plots validation and test {accuracy_title}. Clicking anything else on the page stops a running "
               "sweep.")
    request = sweep_inputs()
    if request is not None:
        run_sweep(request, accuracy_column, accuracy_title)
    if "compare_sweep_result" in st.session_state:
        show_sweep(st.session_state["compare_sweep_result"])


# ---------------------------------------------------------------------- full vs sampled
SAMPLED_METRICS = {"hit": "Hit rate", "ndcg": "NDCG"}


def sampled_frame(n_negatives: int):
    """Full ranking vs the sampled protocol for the selected runs, computed once per (runs, n, K, split)."""
    cache = st.session_state.setdefault("_compare_sampled", {})
    key = (tuple(spec["run_id"] for spec in selected), n_negatives, k, split.key())
    if key not in cache:
        def score_again():
            models = {name: entry["model"] for name, entry in entries.items()}  # loads stored models on demand
            return full_vs_sampled(models, reports, split.train, split.test, k, n_negatives)

        with st.spinner(f"Scoring {len(entries)} run(s) again against {n_negatives:,} sampled items per test item…"):
            frame = attempt("Scoring the runs against sampled items", score_again)
        cache.clear()  # one comparison at a time: the frames are small, the point is not to recompute on reruns
        cache[key] = frame
    return cache[key]


def sampled_view() -> None:
    st.caption("Many papers and libraries do not rank the whole catalogue: each test item is ranked against about 100 "
               "items drawn at random from those the person never touched. The numbers look far better and, "
               "worse, the order of the models can change (Krichene & Rendle, 2020). Every run below is scored "
               "again that way, with the same random draws, next to its full-ranking number. The effect is strongest "
               "with one test item per person (the leave-last-out split in the sidebar), the setting those papers use.")
    c1, c2 = st.columns([1, 2])
    n_negatives = int(c1.number_input("Sampled items per test item", 10, 5000, 100, step=10,
                                      key="compare_sampled_n"))
    metric = c2.radio("Metric", list(SAMPLED_METRICS), format_func=SAMPLED_METRICS.get, horizontal=True,
                      key="compare_sampled_metric")
    if len(reports) < 2:
        st.info("Pick at least two runs above: the point is how their order changes.")
        return
    frame = sampled_frame(n_negatives)
    title = f"{SAMPLED_METRICS[metric]}@{k}"
    one = frame[frame["metric"] == metric]
    show(charts.rank_slopes(one, title))
    changes = rank_changes(frame, metric)
    if changes:
        st.warning(f"Sampling changes the order of the models on {title}:\n\n"
                   + "\n".join(f"- {md_escape(line)}" for line in changes))
    else:
        st.success(f"Here sampling keeps the order of these runs on {title}, but every number is inflated, and "
                   "with other models or another K the order can change.")
    values = one.pivot(index="run", columns="protocol", values="value")[[FULL, sampled_label(n_negatives)]]
    values["inflation"] = values[sampled_label(n_negatives)] / values[FULL].where(values[FULL] > 0)
    st.dataframe(values.reset_index().rename(columns={"run": "model", "inflation": "sampled ÷ full"}),
                 hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(format="%.4f")
                                for c in (FULL, sampled_label(n_negatives))}
                 | {"sampled ÷ full": st.column_config.NumberColumn(format="%.1f×")})


VIEWS = {"overview": overview_view, "tradeoffs": tradeoffs_view, "users": users_view, "sweep": sweep_view,
         "sampled": sampled_view}
st.session_state.setdefault("compare_view", "overview")
view = st.segmented_control("Show", list(VIEWS), format_func=share.VIEWS.get, required=True, key="compare_view")
VIEWS[view or "overview"]()


# ---------------------------------------------------------------------- share and export
st.subheader("Share this view")
url = share.write(state.current_source()["label"], [spec["run_id"] for spec in selected],
                  st.session_state.get("compare_user"), k, view)
st.code(url, language=None)
st.caption("Copy the link (button at the right of the box): it opens this dataset, split, these runs, view, user "
           "and K. Runs are looked up on this server by id; the link holds no data.")
if not share.can_render():
    st.caption("Each chart's ⋯ menu saves it as PNG or SVG.")
elif exported:
    if st.session_state.get("compare_export_chart") not in exported:  # the view changed: its charts did too
        st.session_state.pop("compare_export_chart", None)
    c1, c2, c3 = st.columns([4, 1, 1], vertical_alignment="bottom")
    title = c1.selectbox("Chart to download", list(exported), key="compare_export_chart")
    chart = exported[title]
    filename = "".join(ch if ch.isalnum() else "_" for ch in title.lower()).strip("_")[:60] or "chart"
    c2.download_button("PNG", lambda: share.render(chart, "png"), f"{filename}.png", "image/png",
                       key="compare_export_png", width="stretch", on_click="ignore")
    c3.download_button("SVG", lambda: share.render(chart, "svg"), f"{filename}.svg", "image/svg+xml",
                       key="compare_export_svg", width="stretch", on_click="ignore")

"""Compare page: every trained run on the current split, side by side, in a table and charts."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from recsys.evaluation import compare_reports, curve
from ui import charts, runs, state

st.title("Compare")

config = state.split_config()
current = state.current_source()["label"]
all_runs = [r for r in state.runs() if runs.result(r) is not None]
comparable = [r for r in all_runs if r["dataset"] == current and r["split"] == config.key()]
if len(comparable) < len(all_runs):
    st.caption(f"{len(all_runs) - len(comparable)} run(s) on another dataset or split are hidden: "
               "models are only comparable on the same test set.")
if not comparable:
    st.info("No trained models on this dataset and split yet. Train some on the Train page.")
    st.page_link("app_pages/train.py", label="Go to Train", icon=":material/model_training:")
    st.stop()


def run_name(spec: dict) -> str:
    """Label plus the parameters that differ from another run of the same model."""
    same_model = [r for r in comparable if r["model"] == spec["model"]]
    if len(same_model) == 1:
        return spec["label"]
    differing = {k: v for k, v in spec["params"].items() if any(r["params"].get(k) != v for r in same_model)}
    return f"{spec['label']} ({', '.join(f'{k}={v}' for k, v in differing.items())})"


def p_value(p: float) -> str:
    """'= 2.2e-05', or '< 1e-300' where the p-value underflowed to 0 (printing 'p = 0' would claim certainty)."""
    return f"= {p:.3g}" if p > 0 else "< 1e-300"


names = [run_name(r) for r in comparable]
reports = {name: runs.result(spec)["report"] for name, spec in zip(names, comparable)}
fit_seconds = {name: runs.result(spec)["fit_seconds"] for name, spec in zip(names, comparable)}
k = st.select_slider("K (length of the recommended list)", options=list(runs.EVAL_K), value=10, key="compare_k")

ACCURACY = ["ndcg", "recall", "precision", "map", "mrr", "hit"]
BEYOND = ["novelty", "arp", "ild"]


def metrics_table() -> pd.DataFrame:
    rows = []
    for name, report in reports.items():
        row = {"model": name}
        for metric in ACCURACY + BEYOND:
            key = f"{metric}@{k}"
            if key in report.means:
                row[key] = report.means[key]
        row[f"ndcg@{k} 95% CI"] = "{:.3f} – {:.3f}".format(*report.ci.get(f"ndcg@{k}", (float("nan"),) * 2))
        row[f"coverage@{k}"] = report.list_level.get(f"coverage@{k}")
        row[f"gini@{k}"] = report.list_level.get(f"gini@{k}")
        row[f"tail_share@{k}"] = report.list_level.get(f"tail_share@{k}")
        if report.rmse is not None:
            row["rmse"], row["mae"] = report.rmse, report.mae
        row["fit s"] = fit_seconds[name]
        row["score s"] = report.score_seconds
        row["users"] = report.n_users
        rows.append(row)
    return pd.DataFrame(rows)


table = metrics_table()
higher_better = [c for c in table.columns if any(c.startswith(m + "@") for m in ACCURACY + ["novelty", "ild", "coverage",
                                                                                            "tail_share"])]
lower_better = [c for c in table.columns if c.startswith(("arp@", "gini@")) or c in ("rmse", "mae")]
styled = (table.style
          .highlight_max(subset=higher_better, color="#c8f7c5")
          .highlight_min(subset=lower_better, color="#c8f7c5")
          .format(precision=4, subset=[c for c in table.columns if table[c].dtype.kind == "f"]))
st.subheader(f"Metrics at K = {k}")
st.caption("Green marks the best run per column. Full ranking over the catalogue; training items excluded. "
           "ARP = average popularity of recommended items; Gini = how unequally exposure is spread over items.")
st.dataframe(styled, hide_index=True, width="stretch")
st.download_button("Download metrics (CSV)", table.to_csv(index=False).encode(), "metrics.csv", "text/csv",
                   key="download_metrics")

metric_choice = st.radio("Curve metric", ["ndcg", "recall", "precision", "hit", "coverage"], horizontal=True,
                         key="compare_curve_metric")
curves = pd.concat([curve(rep, metric_choice).assign(run=name) for name, rep in reports.items()])
left, right = st.columns(2)
with left:
    st.altair_chart(charts.metric_curves(curves, metric_choice), width="stretch")
with right:
    ci = pd.DataFrame([{"run": name, "mean": rep.means[f"ndcg@{k}"], "low": rep.ci[f"ndcg@{k}"][0],
                        "high": rep.ci[f"ndcg@{k}"][1]} for name, rep in reports.items()])
    st.altair_chart(charts.bars_with_ci(ci, f"NDCG@{k}"), width="stretch")
left, right = st.columns(2)
with left:
    cov = pd.DataFrame({"run": list(reports), "coverage": [rep.list_level[f"coverage@{k}"] for rep in reports.values()]})
    st.altair_chart(charts.simple_bars(cov, "coverage", f"Catalogue coverage@{k} (share of items ever recommended)",
                                       ".1%"), width="stretch")
with right:
    nov = pd.DataFrame({"run": list(reports), "novelty": [rep.means[f"novelty@{k}"] for rep in reports.values()]})
    st.altair_chart(charts.simple_bars(nov, "novelty", f"Novelty@{k} (bits of surprise per item)", ".2f"),
                    width="stretch")

if len(reports) >= 2:
    st.subheader("Is the difference real?")
    c1, c2 = st.columns(2)
    a = c1.selectbox("Model A", list(reports), index=0, key="compare_a")
    b = c2.selectbox("Model B", list(reports), index=1, key="compare_b")
    if a != b:
        test = compare_reports(reports[a], reports[b], f"ndcg@{k}", names=(a, b))
        st.write(test["sentence"])
        st.caption(f"Paired t-test p {p_value(test['t_pvalue'])} · Wilcoxon signed-rank p "
                   f"{p_value(test['wilcoxon_pvalue'])} · effect size |d| = {abs(test['cohens_d']):.2f} "
                   f"(0.2 small, 0.5 medium, 0.8 large) over {test['n']:,} users.")

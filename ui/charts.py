"""Altair charts used by the pages: pure functions from tables to labelled, tooltipped charts."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

HEIGHT = 260
# Height is the plot's own height; only the width follows the container. Streamlit's default
# ("fit" both ways) squeezes titles and axes into HEIGHT, which clips a chart's title when its
# y-axis title is longer than the squeezed plot (the long-tail chart's did).
FIT_WIDTH = alt.AutoSizeParams(type="fit-x", contains="padding")


def long_tail(x: np.ndarray, y: np.ndarray) -> alt.Chart:
    """Cumulative share of interactions against share of items, most popular first."""
    step = max(1, len(x) // 400)  # 400 points draw the curve exactly enough and fast
    df = pd.DataFrame({"items": x[::step], "interactions": y[::step]})
    line = alt.Chart(df).mark_area(opacity=0.35, line=True).encode(
        x=alt.X("items:Q", title="Share of items (most popular first)", axis=alt.Axis(format="%")),
        y=alt.Y("interactions:Q", title="Cumulative share of interactions", axis=alt.Axis(format="%")),
        tooltip=[alt.Tooltip("items:Q", format=".1%", title="top items"),
                 alt.Tooltip("interactions:Q", format=".1%", title="of interactions")],
    )
    rule = alt.Chart(pd.DataFrame({"x": [0.2]})).mark_rule(strokeDash=[4, 4], color="gray").encode(x="x:Q")
    return (line + rule).properties(autosize=FIT_WIDTH, height=HEIGHT,
                                    title="Long tail: how concentrated is consumption?")


def histogram(values: np.ndarray, title: str, x_title: str, log_x: bool = False) -> alt.Chart:
    """Counts of entities by number of interactions, on log-spaced bins when the range is wide."""
    values = np.asarray(values)
    values = values[values > 0]
    if log_x:
        edges = np.unique(np.round(np.geomspace(values.min(), values.max() + 1, 30)))
    else:
        edges = np.histogram_bin_edges(values, bins=30)
    counts, edges = np.histogram(values, bins=edges)
    df = pd.DataFrame({"low": edges[:-1], "high": edges[1:], "count": counts})
    scale = alt.Scale(type="log") if log_x else alt.Scale()
    return alt.Chart(df).mark_bar().encode(
        x=alt.X("low:Q", title=x_title, scale=scale, bin="binned"),
        x2="high:Q",
        y=alt.Y("count:Q", title="Count"),
        tooltip=[alt.Tooltip("low:Q", title="from", format=",.0f"), alt.Tooltip("high:Q", title="to", format=",.0f"),
                 alt.Tooltip("count:Q", title="count", format=",")],
    ).properties(autosize=FIT_WIDTH, height=HEIGHT, title=title)


def rating_bars(hist: dict[float, int]) -> alt.Chart:
    df = pd.DataFrame({"rating": list(hist), "count": list(hist.values())})
    return alt.Chart(df).mark_bar().encode(
        x=alt.X("rating:O", title="Rating", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("count:Q", title="Interactions"),
        tooltip=["rating", alt.Tooltip("count:Q", format=",")],
    ).properties(autosize=FIT_WIDTH, height=HEIGHT, title="Rating distribution")


def sparsity(cells: pd.DataFrame, n_users: int, n_items: int) -> alt.Chart:
    """A sample of the user x item matrix: a dot for every interaction."""
    return alt.Chart(cells).mark_square(size=6).encode(
        x=alt.X("item_rank:Q", title=f"Items (sample of {n_items}, most popular left)"),
        y=alt.Y("user_rank:Q", title=f"Users (sample of {n_users}, most active top)", scale=alt.Scale(reverse=True)),
        color=alt.Color("rating:Q", title="Rating", scale=alt.Scale(scheme="reds")),
        tooltip=["user", "item", "rating"],
    ).properties(autosize=FIT_WIDTH, height=320, title="What the matrix looks like (each dot is an interaction)")


METRIC_NAMES = {"ndcg": "NDCG", "recall": "Recall", "precision": "Precision", "hit": "Hit rate",
                "coverage": "Coverage", "map": "MAP", "mrr": "MRR", "f1": "F1"}


def metric_curves(df: pd.DataFrame, metric: str) -> alt.Chart:
    """metric@K against K, one line per run (df columns: run, k, value)."""
    sel = alt.selection_point(fields=["run"], bind="legend")
    metric = METRIC_NAMES.get(metric, metric)
    return alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("k:Q", title="K (list length)"),
        y=alt.Y("value:Q", title=f"{metric}@K"),
        color=alt.Color("run:N", title="Model"),
        opacity=alt.condition(sel, alt.value(1.0), alt.value(0.15)),
        tooltip=["run", "k", alt.Tooltip("value:Q", format=".4f")],
    ).add_params(sel).properties(autosize=FIT_WIDTH, height=HEIGHT, title=f"{metric} as the list grows")


def bars_with_ci(df: pd.DataFrame, metric: str) -> alt.Chart:
    """Mean per run with its 95 % bootstrap interval (df columns: run, mean, low, high)."""
    base = alt.Chart(df).encode(y=alt.Y("run:N", title=None))
    bars = base.mark_bar().encode(
        x=alt.X("mean:Q", title=metric),
        color=alt.Color("run:N", legend=None),
        tooltip=["run", alt.Tooltip("mean:Q", format=".4f"), alt.Tooltip("low:Q", format=".4f", title="95% low"),
                 alt.Tooltip("high:Q", format=".4f", title="95% high")],
    )
    whiskers = base.mark_rule(color="black").encode(x="low:Q", x2="high:Q")
    return (bars + whiskers).properties(autosize=FIT_WIDTH, height=alt.Step(32),
                                        title=f"{metric} (95% bootstrap interval)")


def simple_bars(df: pd.DataFrame, value: str, title: str, fmt: str = ".3f") -> alt.Chart:
    return alt.Chart(df).mark_bar().encode(
        y=alt.Y("run:N", title=None),
        x=alt.X(f"{value}:Q", title=None, axis=alt.Axis(format=fmt)),
        color=alt.Color("run:N", legend=None),
        tooltip=["run", alt.Tooltip(f"{value}:Q", format=fmt)],
    ).properties(autosize=FIT_WIDTH, height=alt.Step(32), title=title)


TRAINING_METRICS = {"loss": "Training loss", "val_ndcg@10": "Validation NDCG@10"}


def training_curve(history: list[dict], metric: str, title: str | None = None) -> alt.Chart:
    """One metric of a fit against the epoch (history: the model's per-epoch dicts)."""
    name = TRAINING_METRICS.get(metric, metric)
    df = pd.DataFrame([{"epoch": h["step"], "value": h[metric]} for h in history if metric in h])
    return alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("epoch:Q", title="Epoch", axis=alt.Axis(tickMinStep=1)),
        y=alt.Y("value:Q", title=name, scale=alt.Scale(zero=False)),
        tooltip=[alt.Tooltip("epoch:Q", title="Epoch"), alt.Tooltip("value:Q", title=name, format=".4f")],
    ).properties(autosize=FIT_WIDTH, height=220, title=title or f"{name} by epoch")


def embedding_map(df: pd.DataFrame, color: str, color_title: str, tooltip: list, title: str,
                  highlight: pd.DataFrame | None = None, categorical: bool = True) -> alt.Chart:
    """2-D projection scatter; ``highlight`` rows (x, y, title) are drawn on top, ringed and labelled."""
    if categorical:
        encoding = alt.Color(f"{color}:N", title=color_title, scale=alt.Scale(scheme="tableau20"))
    else:
        encoding = alt.Color(f"{color}:Q", title=color_title, scale=alt.Scale(scheme="viridis"))
    points = alt.Chart(df).mark_circle(size=28, opacity=0.7).encode(
        x=alt.X("x:Q", title="Projection axis 1", axis=alt.Axis(labels=False, ticks=False)),
        y=alt.Y("y:Q", title="Projection axis 2", axis=alt.Axis(labels=False, ticks=False)),
        color=encoding, tooltip=tooltip,
    )
    layers = [points]
    if highlight is not None and len(highlight):
        ring = alt.Chart(highlight).mark_point(size=160, filled=False, color="black", strokeWidth=2).encode(
            x="x:Q", y="y:Q", tooltip=["title"])
        text = alt.Chart(highlight.head(4)).mark_text(align="left", dx=8, dy=-6, fontSize=11).encode(
            x="x:Q", y="y:Q", text="title:N")
        layers += [ring, text]
    return alt.layer(*layers).properties(autosize=FIT_WIDTH, height=520, title=title).interactive()


def attention_heatmap(df: pd.DataFrame, title: str) -> alt.Chart:
    """Query position (row) attends to key position (column); darker = more weight."""
    order = list(dict.fromkeys(df.sort_values("key_pos")["key"]))
    return alt.Chart(df).mark_rect().encode(
        x=alt.X("key:N", sort=order, title="Attended item (earlier → later)", axis=alt.Axis(labelAngle=-45,
                                                                                        labelLimit=160)),
        y=alt.Y("query:N", sort=order, title="Position predicting the next item", axis=alt.Axis(labelLimit=180)),
        color=alt.Color("weight:Q", title="Attention", scale=alt.Scale(scheme="blues", domain=[0, 1])),
        tooltip=[alt.Tooltip("query:N", title="At"), alt.Tooltip("key:N", title="Looks at"),
                 alt.Tooltip("weight:Q", format=".3f", title="Weight")],
    ).properties(autosize=FIT_WIDTH, height=alt.Step(22), title=title)


# ---------------------------------------------------------------------- Compare: trade-offs
def tradeoff_scatter(df: pd.DataFrame, x: str, y: str, x_title: str, y_title: str, title: str,
                     y_format: str = ",.2f") -> alt.Chart:
    """One labelled point per run on two metrics; the Pareto front (df column ``on_front``) joined by a line.

    Front points are filled, dominated ones hollow; no legend, since each point carries its run's name.
    Shares (``y_format`` "%") start at 0: padding below a share would draw a meaningless negative tick.
    """
    df = df.assign(label_above=df[x].rank(method="first").to_numpy() % 2 == 1)
    share = y_format.endswith("%")
    y_scale = alt.Scale(zero=True, padding=0) if share else alt.Scale(zero=False, padding=24)
    base = alt.Chart(df).encode(
        x=alt.X(f"{x}:Q", title=x_title, scale=alt.Scale(zero=False, padding=36)),
        y=alt.Y(f"{y}:Q", title=y_title, scale=y_scale, axis=alt.Axis(format=y_format)),
    )
    front = base.transform_filter(alt.datum.on_front).mark_line(color="#5f6368", strokeDash=[5, 3]).encode(
        order=alt.Order(f"{x}:Q"))
    points = base.mark_point(size=150, strokeWidth=2.5).encode(
        color=alt.Color("run:N", legend=None),
        fill=alt.condition(alt.datum.on_front, alt.Color("run:N", legend=None), alt.value("white")),
        tooltip=[alt.Tooltip("run:N", title="Model"), alt.Tooltip(f"{x}:Q", title=x_title, format=".4f"),
                 alt.Tooltip(f"{y}:Q", title=y_title, format=".4f"),
                 alt.Tooltip("on_front:N", title="On the Pareto front")],
    )
    # neighbours along x take turns labelling above and below, so two close runs do not print over each other
    above = base.transform_filter(alt.datum.label_above).mark_text(dy=-14, fontSize=11).encode(text="run:N")
    below = base.transform_filter(~alt.datum.label_above).mark_text(dy=18, fontSize=11).encode(text="run:N")
    return alt.layer(front, points, above, below).properties(autosize=FIT_WIDTH, height=300, title=title)


def segment_bars(df: pd.DataFrame, metric_title: str) -> alt.Chart:
    """Mean metric per user segment (grouped by run) with 95 % interval whiskers (df from segment_metrics)."""
    order = list(dict.fromkeys(df["label"]))
    base = alt.Chart(df).encode(
        x=alt.X("label:N", title="Users by number of training interactions", sort=order,
                axis=alt.Axis(labelAngle=0, labelLimit=220)),
        xOffset=alt.XOffset("run:N"),
    )
    bars = base.mark_bar().encode(
        y=alt.Y("mean:Q", title=metric_title),
        color=alt.Color("run:N", title="Model"),
        tooltip=[alt.Tooltip("run:N", title="Model"), alt.Tooltip("label:N", title="Segment"),
                 alt.Tooltip("users:Q", title="Users", format=","), alt.Tooltip("mean:Q", format=".4f"),
                 alt.Tooltip("low:Q", title="95% low", format=".4f"),
                 alt.Tooltip("high:Q", title="95% high", format=".4f")],
    )
    whiskers = base.mark_rule(color="black").encode(y="low:Q", y2="high:Q")
    return (bars + whiskers).properties(autosize=FIT_WIDTH, height=HEIGHT,
                                        title=f"{metric_title} for new, casual and heavy users (95% interval)")


CONSUMED = "Consumed in test"


def exposure_bars(df: pd.DataFrame, k: int) -> alt.Chart:
    """Share of top-K slots per popularity bucket for each run, beside the share people consumed (grey bar).

    The colour scale's domain is the runs alone, sorted as the other charts sort them, so each run keeps
    its colour across the page; the consumed bar is painted grey outside the scale.
    """
    runs = sorted(df["run"].unique())
    shown = df.rename(columns={"recommended_share": "share", "run": "series"})[["bucket", "share", "items", "series"]]
    consumed = (df.groupby("bucket", sort=False, as_index=False)
                .agg(share=("consumed_share", "first"), items=("items", "first")).assign(series=CONSUMED))
    long = pd.concat([shown, consumed], ignore_index=True)
    return alt.Chart(long).mark_bar().encode(
        x=alt.X("bucket:N", title="Item popularity bucket (by share of training interactions)",
                sort=["head", "mid", "tail"], axis=alt.Axis(labelAngle=0)),
        xOffset=alt.XOffset("series:N", sort=[*runs, CONSUMED]),
        y=alt.Y("share:Q", title="Share of top-K slots / of consumption", axis=alt.Axis(format="%")),
        color=alt.condition(alt.datum.series == CONSUMED, alt.value("#9aa0a6"),
                            alt.Color("series:N", title="Model", scale=alt.Scale(domain=runs))),
        tooltip=[alt.Tooltip("series:N", title="Series"), alt.Tooltip("bucket:N", title="Bucket"),
                 alt.Tooltip("items:Q", title="Items in bucket", format=","),
                 alt.Tooltip("share:Q", title="Share", format=".1%")],
    ).properties(autosize=FIT_WIDTH, height=HEIGHT,
                 title=f"Who gets exposure: top-{k} slots per bucket (grey: share consumed in the test set)")


def distribution_boxes(df: pd.DataFrame, metric_title: str) -> alt.Chart:
    """Box plot per run from precomputed quartiles and whiskers (df from tradeoffs.distribution_summary)."""
    base = alt.Chart(df).encode(y=alt.Y("run:N", title=None, axis=alt.Axis(labelLimit=220)))
    tooltip = [alt.Tooltip("run:N", title="Model"), alt.Tooltip("median:Q", format=".3f", title="Median"),
               alt.Tooltip("q1:Q", format=".3f", title="25th percentile"),
               alt.Tooltip("q3:Q", format=".3f", title="75th percentile"),
               alt.Tooltip("mean:Q", format=".3f", title="Mean"),
               alt.Tooltip("zero_share:Q", format=".1%", title="Users with no hit"),
               alt.Tooltip("users:Q", format=",", title="Users")]
    whisker = base.mark_rule(color="#5f6368").encode(x=alt.X("whisker_low:Q", title=metric_title),
                                                     x2="whisker_high:Q", tooltip=tooltip)
    box = base.mark_bar(size=18, opacity=0.85).encode(x="q1:Q", x2="q3:Q", color=alt.Color("run:N", legend=None),
                                                      tooltip=tooltip)
    median = base.mark_tick(color="white", thickness=2, size=18).encode(x="median:Q", tooltip=tooltip)
    mean = base.mark_point(shape="diamond", color="black", size=50, filled=True).encode(x="mean:Q", tooltip=tooltip)
    return alt.layer(whisker, box, median, mean).properties(
        autosize=FIT_WIDTH, height=alt.Step(36),
        title=f"Per-user {metric_title}: how it spreads over users")


def sweep_metric(df: pd.DataFrame, param: str, metric_title: str, log_x: bool) -> alt.Chart:
    """Validation and test metric against the swept value (df columns value, valid, test)."""
    long = df.melt(id_vars=["value"], value_vars=["valid", "test"], var_name="part", value_name="score")
    long["part"] = long["part"].map({"valid": "Validation", "test": "Test"})
    scale = alt.Scale(type="log") if log_x else alt.Scale(zero=False)
    return alt.Chart(long).mark_line(point=True).encode(
        x=alt.X("value:Q", title=param, scale=scale),
        y=alt.Y("score:Q", title=metric_title, scale=alt.Scale(zero=False)),
        color=alt.Color("part:N", title="Scored on", sort=["Validation", "Test"]),
        tooltip=[alt.Tooltip("value:Q", title=param), alt.Tooltip("part:N", title="Scored on"),
                 alt.Tooltip("score:Q", title=metric_title, format=".4f")],
    ).properties(autosize=FIT_WIDTH, height=HEIGHT, title=f"{metric_title} as {param} changes")


def sweep_loss(df: pd.DataFrame, param: str, log_x: bool) -> alt.Chart:
    """Final training loss against the swept value (rows without a loss are left out)."""
    scale = alt.Scale(type="log") if log_x else alt.Scale(zero=False)
    return alt.Chart(df.dropna(subset=["loss"])).mark_line(point=True, color="#d62728").encode(
        x=alt.X("value:Q", title=param, scale=scale),
        y=alt.Y("loss:Q", title="Final training loss", scale=alt.Scale(zero=False)),
        tooltip=[alt.Tooltip("value:Q", title=param), alt.Tooltip("loss:Q", title="Loss", format=",.4g")],
    ).properties(autosize=FIT_WIDTH, height=HEIGHT, title=f"Training loss as {param} changes")


def rank_slopes(df: pd.DataFrame, metric_title: str) -> alt.Chart:
    """Each run's place under full ranking (left) and under the sampled protocol (right), joined by a
    line: a crossing line is a pair of models whose order sampling swaps (df: run, protocol, value, rank).

    Tied runs share a rank but get neighbouring rows, so their labels do not print over each other.
    """
    protocols = list(dict.fromkeys(df["protocol"]))
    df = df.assign(place=df.groupby("protocol")["value"].rank(ascending=False, method="first").astype(int))
    n_runs = int(df["place"].max())
    base = alt.Chart(df).encode(
        x=alt.X("protocol:N", sort=protocols, title=None, axis=alt.Axis(labelAngle=0, labelFontSize=12),
                scale=alt.Scale(padding=0.9)),
        y=alt.Y("place:Q", title=f"Place on {metric_title} (1 = best)",
                scale=alt.Scale(domain=[n_runs + 0.5, 0.5], nice=False),
                axis=alt.Axis(values=list(range(1, n_runs + 1)), format="d")),
        tooltip=[alt.Tooltip("run:N", title="Model"), alt.Tooltip("protocol:N", title="Protocol"),
                 alt.Tooltip("value:Q", title=metric_title, format=".4f"), alt.Tooltip("rank:Q", title="Rank")],
    )
    colour = alt.Color("run:N", legend=None)
    lines = base.mark_line(strokeWidth=3).encode(color=colour, detail="run:N")
    points = base.mark_circle(size=140, opacity=1).encode(color=colour)
    # labels in the page's text colour: a pale series colour is unreadable on white
    labelled = base.transform_calculate(label=alt.datum.run + " · " + alt.expr.format(alt.datum.value, ".4f"))
    left = labelled.transform_filter(alt.datum.protocol == protocols[0]).mark_text(
        align="right", dx=-12, fontSize=12, color="#31333f").encode(text="label:N")
    right = labelled.transform_filter(alt.datum.protocol == protocols[-1]).mark_text(
        align="left", dx=12, fontSize=12, color="#31333f").encode(text="label:N")
    return alt.layer(lines, points, left, right).properties(
        autosize=FIT_WIDTH, height=max(160, 44 * n_runs),
        title=f"{metric_title}: the order of the models under each protocol")

"""Altair charts used by the pages: pure functions from tables to labelled, tooltipped charts."""

from __future__ import annotations

import zlib

import altair as alt
import numpy as np
import pandas as pd

from recsys.models import registry

HEIGHT = 260
# Height is the plot's own height; only the width follows the container. Streamlit's default
# ("fit" both ways) squeezes titles and axes into HEIGHT, which clips a chart's title when its
# y-axis title is longer than the squeezed plot (the long-tail chart's did).
FIT_WIDTH = alt.AutoSizeParams(type="fit-x", contains="padding")


# ---------------------------------------------------------------------- one colour per model
# 22 distinct colours (Tableau 10 first, then more); a model keeps its colour on every page and in every chart,
# because the colour is a function of the model alone, never of which other runs a chart happens to show.
MODEL_PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
                 "#9c755f", "#17becf", "#bcbd22", "#8c564b", "#9467bd", "#2ca02c", "#e377c2", "#1f77b4",
                 "#d62728", "#bab0ac", "#7f7f7f", "#aec7e8", "#ffbb78", "#98df8a")
# The models most often trained side by side take the first, most distinct colours; the rest follow the registry.
FIRST_COLOURED = ("pop", "item_knn", "ease", "ials", "bpr_mf", "pure_svd", "lightgcn", "mult_vae", "sasrec",
                  "user_knn")


def model_colour(model_key: str) -> str:
    """The colour of ``model_key`` everywhere: its place in ``FIRST_COLOURED`` then the registry picks it from
    ``MODEL_PALETTE``.

    A key the registry does not hold (an imported run of a model since removed) gets a colour from a stable hash
    of its name, so it too is the same on every page.
    """
    keys = [*(key for key in FIRST_COLOURED if key in registry), *(key for key in registry
                                                                   if key not in FIRST_COLOURED)]
    position = keys.index(model_key) if model_key in keys else zlib.crc32(model_key.encode())
    return MODEL_PALETTE[position % len(MODEL_PALETTE)]


def model_of(run_name: str) -> str:
    """The registry key behind a run's display name ("EASE (lam=100.0)" → "ease"; a renamed run: its name).

    Display names start with the model's label; the longest matching label wins ("NCF: NeuMF" over "NCF").
    """
    name = str(run_name).removeprefix("A: ").removeprefix("B: ")
    matches = [(len(cls.label), key) for key, cls in registry.items() if name.startswith(cls.label)]
    return max(matches)[1] if matches else name


def run_colour(run_name: str) -> str:
    """The colour of a run, by the model it runs: the same on the Compare, Serving and Homepage pages."""
    return model_colour(model_of(run_name))


def run_colours(runs) -> alt.Scale:
    """A colour scale whose domain is ``runs`` and whose range is each run's model colour (``run_colour``)."""
    names = list(dict.fromkeys(str(run) for run in runs))
    return alt.Scale(domain=names, range=[run_colour(name) for name in names])


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
        color=alt.Color("run:N", title="Model", scale=run_colours(df["run"])),
        opacity=alt.condition(sel, alt.value(1.0), alt.value(0.15)),
        tooltip=["run", "k", alt.Tooltip("value:Q", format=".4f")],
    ).add_params(sel).properties(autosize=FIT_WIDTH, height=HEIGHT, title=f"{metric} as the list grows")


def bars_with_ci(df: pd.DataFrame, metric: str) -> alt.Chart:
    """Mean per run with its 95 % bootstrap interval (df columns: run, mean, low, high)."""
    base = alt.Chart(df).encode(y=alt.Y("run:N", title=None))
    bars = base.mark_bar().encode(
        x=alt.X("mean:Q", title=metric),
        color=alt.Color("run:N", legend=None, scale=run_colours(df["run"])),
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
        color=alt.Color("run:N", legend=None, scale=run_colours(df["run"])),
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


# ---------------------------------------------------------------------- labels beside scatter points
# Where a point's label may go, tried in this order: (name, dx, dy, align) in pixels from the point.
LABEL_SPOTS = (("above", 0, -14, "center"), ("below", 0, 16, "center"), ("right", 10, 0, "left"),
               ("left", -10, 0, "right"), ("above right", 8, -14, "left"), ("above left", -8, -14, "right"),
               ("below right", 8, 16, "left"), ("below left", -8, 16, "right"), ("high", 0, -28, "center"),
               ("low", 0, 30, "center"), ("high left", -8, -28, "right"), ("high right", 8, -28, "left"),
               ("low left", -8, 30, "right"), ("low right", 8, 30, "left"), ("higher", 0, -42, "center"),
               ("lower", 0, 44, "center"), ("higher left", -8, -42, "right"), ("lower left", -8, 44, "right"),
               ("higher right", 8, -42, "left"), ("lower right", 8, 44, "left"))
LABEL_FONT = 11
LABEL_HEIGHT = 13
POINT_HALF = 7  # a point's half-size in pixels: a label must not cover any point either


def label_width(text: str, font_size: int = LABEL_FONT) -> float:
    """Pixels a label takes: about 0.6 em a character in the default sans-serif, a little spare."""
    return 0.6 * font_size * len(str(text)) + 4


def _label_box(x: float, y: float, width: float, spot: tuple) -> tuple[float, float, float, float]:
    _, dx, dy, align = spot
    left = {"center": x + dx - width / 2, "left": x + dx, "right": x + dx - width}[align]
    return left, y + dy - LABEL_HEIGHT / 2, left + width, y + dy + LABEL_HEIGHT / 2


def _overlap(a: tuple, boxes: np.ndarray) -> float:
    """Total area ``a`` shares with each row (left, top, right, bottom) of ``boxes``."""
    if not len(boxes):
        return 0.0
    across = np.clip(np.minimum(a[2], boxes[:, 2]) - np.maximum(a[0], boxes[:, 0]), 0, None)
    down = np.clip(np.minimum(a[3], boxes[:, 3]) - np.maximum(a[1], boxes[:, 1]), 0, None)
    return float((across * down).sum())


def place_labels(x_px: np.ndarray, y_px: np.ndarray, labels, width: float, height: float) -> list[str]:
    """A spot of ``LABEL_SPOTS`` for each point's label such that no two labels, and no label and point, overlap.

    Points are in pixels of a ``width`` x ``height`` plot. Greedy: the most crowded point chooses first, taking
    the first spot that stays inside the plot and clear of every point and label placed so far; when no spot is
    clear it takes the one with the least overlap. A handful of points, so the loop over them is cheap.
    """
    x_px, y_px = np.asarray(x_px, float), np.asarray(y_px, float)
    widths = [label_width(text) for text in labels]
    points = np.column_stack([x_px - POINT_HALF, y_px - POINT_HALF, x_px + POINT_HALF, y_px + POINT_HALF])
    crowding = np.hypot(x_px[:, None] - x_px[None, :], y_px[:, None] - y_px[None, :])
    order = np.argsort(np.sort(crowding, axis=1)[:, 1] if len(x_px) > 1 else np.zeros(len(x_px)), kind="stable")
    placed: list[tuple] = []
    spots: list[str] = [""] * len(x_px)
    for i in order:
        others = np.delete(points, i, axis=0)
        best, best_cost = None, np.inf
        for spot in LABEL_SPOTS:
            box = _label_box(x_px[i], y_px[i], widths[i], spot)
            outside = max(0.0, -box[0]) + max(0.0, box[2] - width) + max(0.0, -box[1]) + max(0.0, box[3] - height)
            cost = _overlap(box, np.array(placed)) + _overlap(box, others) + outside * LABEL_HEIGHT
            if cost < best_cost:
                best, best_cost = (spot, box), cost
            if cost == 0:
                break
        spots[i] = best[0][0]
        placed.append(best[1])
    return spots


def label_boxes(x_px, y_px, labels, spots) -> np.ndarray:
    """The (left, top, right, bottom) pixel box of each placed label (for tests and overlap checks)."""
    by_name = {spot[0]: spot for spot in LABEL_SPOTS}
    return np.array([_label_box(x, y, label_width(text), by_name[name])
                     for x, y, text, name in zip(x_px, y_px, labels, spots)])


def padded_domain(values, share: bool = False, pad: float = 0.12, log: bool = False) -> list[float]:
    """[low, high] around ``values`` with ``pad`` of their range spare each side (shares start at 0)."""
    values = np.asarray(values, float)
    if log:
        low, high = np.log10(values.min()), np.log10(values.max())
        spare = max(high - low, 0.2) * pad
        return [float(10 ** (low - spare)), float(10 ** (high + spare))]
    low, high = float(values.min()), float(values.max())
    spare = (high - low) * pad or max(abs(high) * pad, 1e-3)
    if share:
        return [0.0, high + spare]
    return [low - spare, high + spare]


def to_pixels(values, domain: list[float], size: float, flip: bool = False, log: bool = False) -> np.ndarray:
    """Where ``values`` fall on an axis of ``size`` pixels over ``domain`` (y axes run downwards: ``flip``)."""
    values, domain = np.asarray(values, float), np.asarray(domain, float)
    if log:
        values, domain = np.log10(values), np.log10(domain)
    share = (values - domain[0]) / max(domain[1] - domain[0], 1e-12)
    return (1 - share if flip else share) * size


def placed_label_layers(base: alt.Chart, spots: list[str], text: str, column: str = "label_spot") -> list[alt.Chart]:
    """One text layer per spot used (a text mark's offset and alignment cannot vary by row)."""
    return [base.transform_filter(alt.datum[column] == name)
            .mark_text(dx=dx, dy=dy, align=align, baseline="middle", fontSize=LABEL_FONT, color="#31333f")
            .encode(text=f"{text}:N") for name, dx, dy, align in LABEL_SPOTS if name in set(spots)]


# The narrowest plot a scatter gets (one of three columns at 1400 px): labels placed clear of each other at this
# size stay clear on a wider screen, since points only move further apart.
SCATTER_PLOT_WIDTH = 240
SCATTER_PLOT_HEIGHT = 220


# ---------------------------------------------------------------------- Compare: trade-offs
def tradeoff_scatter(df: pd.DataFrame, x: str, y: str, x_title: str, y_title: str, title: str,
                     y_format: str = ",.2f") -> alt.Chart:
    """One labelled point per run on two metrics; the Pareto front (df column ``on_front``) joined by a line.

    Front points are filled, dominated ones hollow; no legend, since each point carries its run's name, placed
    beside the point where it covers no other label or point (``place_labels``). Each run has its model's colour.
    Shares (``y_format`` "%") start at 0: padding below a share would draw a meaningless negative tick.
    """
    share = y_format.endswith("%")
    x_domain, y_domain = padded_domain(df[x]), padded_domain(df[y], share=share)
    spots = place_labels(to_pixels(df[x], x_domain, SCATTER_PLOT_WIDTH),
                         to_pixels(df[y], y_domain, SCATTER_PLOT_HEIGHT, flip=True), df["run"],
                         SCATTER_PLOT_WIDTH, SCATTER_PLOT_HEIGHT)
    df = df.assign(label_spot=spots)
    colours = run_colours(df["run"])
    base = alt.Chart(df).encode(
        x=alt.X(f"{x}:Q", title=x_title, scale=alt.Scale(domain=x_domain, nice=False)),
        y=alt.Y(f"{y}:Q", title=y_title, scale=alt.Scale(domain=y_domain, nice=False),
                axis=alt.Axis(format=y_format)),
    )
    front = base.transform_filter(alt.datum.on_front).mark_line(color="#5f6368", strokeDash=[5, 3]).encode(
        order=alt.Order(f"{x}:Q"))
    points = base.mark_point(size=150, strokeWidth=2.5).encode(
        color=alt.Color("run:N", legend=None, scale=colours),
        fill=alt.condition(alt.datum.on_front, alt.Color("run:N", legend=None, scale=colours), alt.value("white")),
        tooltip=[alt.Tooltip("run:N", title="Model"), alt.Tooltip(f"{x}:Q", title=x_title, format=".4f"),
                 alt.Tooltip(f"{y}:Q", title=y_title, format=".4f"),
                 alt.Tooltip("on_front:N", title="On the Pareto front")],
    )
    return alt.layer(front, points, *placed_label_layers(base, spots, "run")).properties(
        autosize=FIT_WIDTH, height=300, title=title)


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
        color=alt.Color("run:N", title="Model", scale=run_colours(df["run"])),
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

    Each run has its model's colour (``run_colours``); the consumed bar is painted grey outside the scale.
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
                            alt.Color("series:N", title="Model", scale=run_colours(runs))),
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
    box = base.mark_bar(size=18, opacity=0.85).encode(
        x="q1:Q", x2="q3:Q", color=alt.Color("run:N", legend=None, scale=run_colours(df["run"])), tooltip=tooltip)
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
    colour = alt.Color("run:N", legend=None, scale=run_colours(df["run"]))
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


# ---------------------------------------------------------------------- Serving
def serving_tradeoff(two_stage: pd.DataFrame, exact: pd.Series, colour: str) -> alt.Chart:
    """Recall against median latency, one point per candidate count (labelled with it, clear of the other labels),
    exact scoring as a red diamond; ``colour`` is the ranking model's (``model_colour``)."""
    points = two_stage.assign(label=two_stage["candidates"].map(lambda n: f"{n:,}"))
    points = pd.concat([points, pd.DataFrame([{**exact.to_dict(), "label": "exact"}])], ignore_index=True)
    x_domain = padded_domain(points["p50_ms"])
    low = min(0.9, float(points["recall"].min()) - 0.02)
    y_domain = [low, 1.0 + (1.0 - low) * 0.08]  # room above 100 % for a label
    spots = place_labels(to_pixels(points["p50_ms"], x_domain, SCATTER_PLOT_WIDTH * 1.5),
                         to_pixels(points["recall"], y_domain, 280, flip=True), points["label"],
                         SCATTER_PLOT_WIDTH * 1.5, 280)
    points = points.assign(label_spot=spots)
    tooltip = [alt.Tooltip("label:N", title="candidates"), alt.Tooltip("recall:Q", format=".1%", title="recall@10"),
               alt.Tooltip("retrieval_recall:Q", format=".1%", title="retrieval recall@10"),
               alt.Tooltip("p50_ms:Q", format=".3f", title="p50 ms"),
               alt.Tooltip("p99_ms:Q", format=".3f", title="p99 ms (median of repeats)")]
    base = alt.Chart(points).encode(
        x=alt.X("p50_ms:Q", title="Median latency per request (ms)", scale=alt.Scale(domain=x_domain, nice=False)),
        y=alt.Y("recall:Q", title="Recall@10 of the ranker's exact top-10", axis=alt.Axis(format="%"),
                scale=alt.Scale(domain=y_domain, nice=False)),
        tooltip=tooltip)
    # joined in candidate order, not latency order: timing noise must not re-route the curve
    line = base.transform_filter("datum.stage == 'two-stage'").mark_line(
        point=alt.OverlayMarkDef(color=colour, size=50), color=colour).encode(
        order="candidates:Q")
    star = base.transform_filter("datum.stage == 'exact'").mark_point(shape="diamond", size=160, color="#d62728",
                                                                      filled=True)
    return alt.layer(line, star, *placed_label_layers(base, spots, "label")).properties(
        autosize=FIT_WIDTH, height=340,
        title=alt.Title("Trade-off: recall against latency", subtitle="Each point: candidates retrieved"))

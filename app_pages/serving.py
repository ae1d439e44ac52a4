"""Serving page: retrieve candidates from an approximate index, rank them with a heavier model,
and see what that costs in recall and saves in time per request."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from recsys.serving import retrieval
from ui import charts, pages, runs, state
from ui.errors import attempt
from ui.text import md_escape

COUNTS = [10, 20, 50, 100, 200, 500, 1000]
# from as few candidates as the list is long: on a small catalogue two good models agree on most of their top
# items, so only the small counts show what retrieval can lose
DEFAULT_COUNTS = [10, 20, 50, 100, 200, 1000]
SCALE_SIZES = [10_000, 30_000, 100_000]
SAME = "same as retrieval"
# the count the headline describes: twice the list, so the ranker really chooses, yet lean enough that the
# retriever misses some of the ranker's favourites (EASE over iALS's 20 on the bundled sample: about 96 %)
SERVED = 20
TIMING_ROUNDS = 3  # every setting is timed this many times; the page shows the median and the p99 spread



def served_default(counts: list[int]) -> int:
    """The count the headline opens on: SERVED when chosen, else the smallest chosen above it, else the largest."""
    return next((n for n in counts if n >= SERVED), counts[-1])


st.title("Serving")
st.caption("How a recommender answers a request in milliseconds: retrieve a few hundred candidates, then rank them.")

with st.expander("Why production systems retrieve first and rank second", expanded=False):
    st.markdown(
        "Scoring every item for every visit costs time in proportion to the catalogue. With millions of "
        "titles and a model that is expensive per item (a deep network, a gradient-boosted ranker with hundreds "
        "of features), that is far over a page's budget of about 100 ms.\n\n"
        "So serving is split in two. **Stage 1 — retrieval**: a cheap model whose scores are inner products of a "
        "user vector and item vectors (iALS, matrix factorization, LightGCN) has its item vectors in an "
        "*approximate nearest-neighbour index*; one query walks a small part of it and returns a few hundred "
        "candidates, in time that barely grows with the catalogue. **Stage 2 — ranking**: the heavy model scores "
        "only those candidates and picks the top 10.\n\n"
        "The price is recall: anything stage 1 misses, stage 2 can never show. Below you see how much of the exact "
        "top-10 survives as the number of candidates grows, and what each choice costs per request.")


# both user and item vectors (the query and the index); decided by the model class, no loading
retrievers = pages.require_trained(
    "user_embeddings", "item_embeddings", what="with user and item embeddings",
    advice="Train one, such as {examples}, on the Train page; any other trained model can then re-rank its "
           "candidates.")

rankers = runs.trained_here()
controls = st.columns([2, 2, 1])
retriever_name = controls[0].selectbox("Retrieval model (stage 1)", list(retrievers), key="serving_retriever",
                                       help="Its item vectors go into the index; its user vectors are the queries.")
others = {n: spec for n, spec in rankers.items() if n != retriever_name}
ranker_options = [SAME, *others]
# the strongest other model ranks by default: re-scoring the retriever's own candidates keeps all of its top-10,
# so recall would sit at 100 % and show nothing of what two-stage serving costs
ranker_name = controls[1].selectbox("Ranking model (stage 2)", ranker_options,
                                    index=ranker_options.index(runs.strongest(others)) if others else 0,
                                    key="serving_ranker",
                                    help="Scores only the candidates. Opens on the other trained model with the "
                                         "best NDCG@10. 'Same as retrieval' re-scores the candidates exactly, "
                                         "which keeps (nearly) all of the retriever's own top-10.")
method = controls[2].selectbox("Index", list(retrieval.METHODS), key="serving_method",
                               format_func={"hnsw": "HNSW (inner product)", "hnsw_l2": "HNSW (MIPS→L2)",
                                            "ivf": "IVF (k-means cells)", "exact": "exact (no index)"}.get,
                               help="Approximate indexes come from faiss; without it every option is exact search.")
options = st.columns([3, 1, 1])
counts = options[0].multiselect("Candidate counts", COUNTS, default=DEFAULT_COUNTS, key="serving_counts")
if not counts:
    st.warning("Pick at least one candidate count.")
    st.stop()
counts = sorted(counts)
if st.session_state.get("serving_served") not in counts:  # a count taken out of the list takes the headline along
    st.session_state.pop("serving_served", None)
served = options[1].selectbox("Served count", counts, index=counts.index(served_default(counts)),
                              key="serving_served", format_func=lambda n: f"{n:,} candidates",
                              help="The setting the figures at the top describe: how many candidates the "
                                   "retriever hands the ranker on each request.")
requests = options[2].number_input("Timed requests", 20, 1000, 200, step=20, key="serving_requests",
                                   help="Users answered one at a time for the latency percentiles.")

retriever_spec = retrievers[retriever_name]
ranker_spec = retriever_spec if ranker_name == SAME else rankers[ranker_name]
seed = state.split_config().seed


@st.cache_data(show_spinner="Building the index and timing requests…", max_entries=16)
def measured(_retriever, _ranker, retriever_id: str, ranker_id: str, method: str, counts: tuple, requests: int,
             seed: int) -> retrieval.Tradeoff:
    return retrieval.serving_tradeoff(_retriever, _ranker, candidate_counts=counts, method=method,
                                      recall_users=500, latency_requests=requests, repeats=TIMING_ROUNDS, seed=seed)


retriever = runs.result(retriever_spec)["model"]
ranker = runs.result(ranker_spec)["model"]
result = attempt("Measuring two-stage serving", measured, retriever, ranker, retriever_spec["run_id"],
                 ranker_spec["run_id"], method, tuple(sorted(counts)), int(requests), seed)
table = result.table
two_stage, exact = table[table["stage"] == "two-stage"], table[table["stage"] == "exact"].iloc[0]
ranker_label = md_escape(ranker_spec["label"])  # only ever shown in markdown (help texts, captions)

if not retrieval.faiss_available() and method != "exact":
    st.warning("faiss is not installed on this server, so the 'index' is exact search. `pip install faiss-cpu` "
               "gives the real approximate indexes.")


def log_domain(values: pd.Series) -> list[float]:
    """A log axis over the measured values and a little spare, never a decade past the data (vega's nice
    rounding would run a 10k-30k axis on to 100k)."""
    low, high = float(values.min()), float(values.max())
    return [low / 1.15, high * 1.15]


def recall_meaning(row: pd.Series, result: retrieval.Tradeoff, retriever: str, ranker: str, same: bool) -> str:
    """The headline recall in words: what is compared with what, and what the number says is lost."""
    n, recall = int(row["candidates"]), float(row["recall"])
    text = (f"**Recall@10** is the share of the 10 items {ranker} recommends after scoring all {result.n_items:,} "
            f"items that it still recommends when it may only choose among {retriever}'s {n:,} candidates: "
            f"{recall:.1%} here, so {10 * (1 - recall):.1f} of every 10 favourites are lost on average "
            f"({result.recall_users:,} users). What the retriever does not fetch, the ranker can never show. ")
    if same:
        return text + ("Ranking with the retrieval model itself re-scores its own best candidates exactly, so only "
                       "what the index misses is lost; pick another trained model as the ranker to see what "
                       "retrieval costs.")
    if recall >= 1.0:
        return text + "At this count the two models agree on every favourite; pick fewer candidates to see the loss."
    return text + "More candidates find more of them, and cost time: the charts below show both."


def timing_note(table: pd.DataFrame, result: retrieval.Tradeoff) -> str:
    """How much the timings move between rounds, in words: p99 rests on a couple of requests."""
    widest = table.loc[(table["p99_high_ms"] / table["p99_low_ms"]).idxmax()]
    tail = max(1, round(result.latency_requests * 0.01))
    return (f"Timings are noisy: each figure is the median of {result.repeats} rounds of {result.latency_requests:,} "
            f"requests, every setting timed once per round. p99 is read off about the slowest {tail} of "
            f"those {result.latency_requests:,} requests, so one pause of the server moves it: between rounds it ranged from "
            f"{widest['p99_low_ms']:.2f} to {widest['p99_high_ms']:.2f} ms at "
            f"{'exact scoring' if widest['stage'] == 'exact' else f'{int(widest.candidates):,} candidates'} (the "
            "widest spread; the table shows every setting's). Compare p50 across settings; read p99 as a range.")


headline = two_stage.iloc[(two_stage["candidates"] - served).abs().argmin()]
n_served = int(headline["candidates"])
cols = st.columns(4)
cols[0].metric("Index", result.backend, help=f"Built in {result.build_seconds * 1000:.0f} ms over "
                                              f"{result.n_items:,} items.")
cols[1].metric(f"Recall@10 with {n_served:,} candidates", f"{headline['recall']:.1%}",
               help=f"Share of {ranker_label}'s full-catalogue top-10 that the two-stage top-10 keeps "
                    f"({result.recall_users:,} users).")
cols[2].metric(f"p50 per request, {n_served:,} candidates", f"{headline['p50_ms']:.2f} ms")
cols[3].metric("p50 per request, exact scoring", f"{exact['p50_ms']:.2f} ms",
               help=f"{ranker_label} scores all {result.n_items:,} items, then the top 10 are picked.")
st.caption(recall_meaning(headline, result, md_escape(retriever_name), ranker_label, ranker_name == SAME))


def latency_chart(two_stage: pd.DataFrame, exact: pd.Series) -> alt.Chart:
    """p50 and p99 per request against the candidate count, exact scoring as dashed reference lines."""
    long = two_stage.melt(id_vars=["candidates", "recall"], value_vars=["p50_ms", "p99_ms"], var_name="percentile",
                          value_name="ms").replace({"percentile": {"p50_ms": "p50", "p99_ms": "p99"}})
    lines = alt.Chart(long).mark_line(point=True).encode(
        x=alt.X("candidates:Q", title="Candidates retrieved (log scale)",
                scale=alt.Scale(type="log", domain=log_domain(two_stage["candidates"]), nice=False)),
        y=alt.Y("ms:Q", title="Milliseconds per request"),
        color=alt.Color("percentile:N", title="Two-stage"),
        tooltip=[alt.Tooltip("candidates:Q", title="candidates"), alt.Tooltip("percentile:N"),
                 alt.Tooltip("ms:Q", format=".3f", title="ms"), alt.Tooltip("recall:Q", format=".1%",
                                                                           title="recall@10")])
    reference = pd.DataFrame({"ms": [exact["p50_ms"], exact["p99_ms"]], "exact": ["exact p50", "exact p99"]})
    rules = alt.Chart(reference).mark_rule(strokeDash=[6, 4], color="#d62728").encode(
        y="ms:Q", tooltip=[alt.Tooltip("exact:N", title="exact scoring"), alt.Tooltip("ms:Q", format=".3f")])
    return (lines + rules).properties(
        title=alt.Title("Latency per request as the candidate count grows",
                        subtitle="Dashed red: exact scoring of every item (p50 below, p99 above)"), height=340)


left, right = st.columns(2)
left.altair_chart(charts.serving_tradeoff(two_stage, exact, charts.model_colour(ranker_spec["model"])),
                  width="stretch")
right.altair_chart(latency_chart(two_stage, exact), width="stretch")

st.subheader("Latency percentiles per request")
shown = table.assign(setting=[f"{n:,} candidates" if s == "two-stage" else f"exact: all {n:,} items"
                              for s, n in zip(table["stage"], table["candidates"])])
st.dataframe(shown[["setting", "retrieval_recall", "recall", "p50_ms", "p99_ms", "p99_low_ms", "p99_high_ms",
                    "mean_ms"]], hide_index=True,
             width="stretch", key="serving_table", column_config={
                 "retrieval_recall": st.column_config.NumberColumn("retrieval recall@10", format="%.3f",
                                                                   help="Share of the retrieval model's own exact "
                                                                        "top-10 among the candidates."),
                 "recall": st.column_config.NumberColumn("recall@10", format="%.3f",
                                                         help="Share of the ranking model's full top-10 kept."),
                 "p50_ms": st.column_config.NumberColumn("p50 ms", format="%.3f"),
                 "p99_ms": st.column_config.NumberColumn("p99 ms", format="%.3f",
                                                         help=f"Median of {TIMING_ROUNDS} rounds' p99."),
                 "p99_low_ms": st.column_config.NumberColumn("p99 lowest round", format="%.3f"),
                 "p99_high_ms": st.column_config.NumberColumn("p99 highest round", format="%.3f"),
                 "mean_ms": st.column_config.NumberColumn("mean ms", format="%.3f")})
st.caption(f"Retrieval: {md_escape(retriever_name)}; ranking: {ranker_label}. Recall over {result.recall_users:,} users, latency "
           f"over {result.latency_requests:,} requests answered one at a time (already-seen items are skipped in "
           "both paths). p99 is the slowest 1 %: the number a latency budget is written against.")
st.caption(timing_note(table, result))


faster = exact["p50_ms"] <= two_stage["p50_ms"].min()
if faster:
    st.info(f"With {result.n_items:,} items, scoring everything is a single small matrix product and is as fast "
            "as (or faster than) the index. Retrieval pays off on large catalogues: try the experiment below.")

st.subheader("What if the catalogue were much bigger?")
st.caption("Grow a synthetic catalogue from the retrieval model's item vectors (resampled, with a little noise, so "
           "it keeps their shape) and time the same request: exact top-10 over every item against 200 candidates "
           "from the index, at a narrow and a wide search. Wider search finds more of the exact top-10 and takes "
           "longer. Building an HNSW index over 100,000 items takes several seconds.")
scale_cols = st.columns([3, 1])
sizes = scale_cols[0].multiselect("Catalogue sizes", SCALE_SIZES, default=SCALE_SIZES[:2], key="serving_scale_sizes",
                                  format_func=lambda n: f"{n:,} items")
if scale_cols[1].button("Grow and measure", key="serving_scale_run", disabled=not sizes):
    st.session_state["serving_scale_request"] = (retriever_spec["run_id"], method, tuple(sorted(sizes)))


@st.cache_data(show_spinner="Growing catalogues, building indexes, timing requests…", max_entries=8)
def scaled(_retriever, retriever_id: str, method: str, sizes: tuple, seed: int) -> pd.DataFrame:
    return retrieval.catalogue_scaling(_retriever, sizes, method=method, seed=seed,
                                       search_widths=retrieval.SEARCH_WIDTHS[method])


request = st.session_state.get("serving_scale_request")
if request and request[0] == retriever_spec["run_id"]:
    growth = attempt("Measuring larger catalogues", scaled, retriever, *request, seed)
    # one line for exact scoring, one per search width of the index
    exact_line = growth.drop_duplicates("items").assign(path="exact scoring", ms=lambda d: d["exact_p50_ms"],
                                                        recall=1.0)
    index_lines = growth.assign(path=[f"{b}, width {w}" for b, w in zip(growth["backend"], growth["search_width"])],
                                ms=growth["index_p50_ms"])
    long = pd.concat([exact_line, index_lines])[["items", "path", "ms", "recall"]]
    st.altair_chart(alt.Chart(long).mark_line(point=True).encode(
        x=alt.X("items:Q", title="Items in the catalogue (log scale)",
                scale=alt.Scale(type="log", domain=log_domain(long["items"]), nice=False)),
        y=alt.Y("ms:Q", title="Median milliseconds per request"),
        color=alt.Color("path:N", title="Path"),
        tooltip=[alt.Tooltip("items:Q", format=",", title="items"), alt.Tooltip("path:N"),
                 alt.Tooltip("ms:Q", format=".3f", title="p50 ms"), alt.Tooltip("recall:Q", format=".1%",
                                                                               title="recall@10")],
    ).properties(title="Median latency as the catalogue grows", height=300), width="stretch")
    st.dataframe(growth, hide_index=True, width="stretch", key="serving_scale_table", column_config={
        "items": st.column_config.NumberColumn("items", format="%d"),
        "search_width": st.column_config.NumberColumn("search width", format="%d",
                                                      help="HNSW: nodes kept during the graph walk (ef_search); "
                                                           "IVF: k-means cells visited (n_probe)."),
        "build_s": st.column_config.NumberColumn("index build s", format="%.2f"),
        "recall": st.column_config.NumberColumn("recall@10", format="%.3f"),
        **{c: st.column_config.NumberColumn(c.replace("_ms", " ms").replace("_", " "), format="%.3f")
           for c in ("exact_p50_ms", "exact_p99_ms", "index_p50_ms", "index_p99_ms")}})

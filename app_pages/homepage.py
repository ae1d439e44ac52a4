"""Homepage page: the Netflix-style page a trained model would build for a user or a new visitor.

Rows, re-ranking, cold start and page metrics are computed in recsys.serving; this page
reads the widgets, calls it and draws tiles (ui.homepage).
"""

from __future__ import annotations

import time

import streamlit as st

from recsys.data.errors import DataError
from recsys.serving.coldstart import supports_fold_in
from recsys.serving.page import HomepageBuilder, PageSettings, typical_users
from ui import charts, pages, runs, state
from ui import homepage as tiles
from ui.errors import attempt
from ui.text import md_escape

QUICK_MODEL = ("item_knn", "item-item kNN")
MIN_PICKS, MAX_PICKS = 3, 10
WHO = {
    "user": "A user (by id)",
    "light": "A typical light user",
    "heavy": "A typical heavy user",
    "new": "A new visitor (pick titles)",
}
MODEL_MODES = {"one": "One model for all rows", "per row": "A model per row"}
SAME_AS_MAIN = ""  # a row's choice that follows the main model


def quick_train() -> None:
    """Train the quick model through the shared training queue (budgets and turns as on the Train page) and
    wait for it here: on the sample it takes seconds. Leaving the page leaves it training."""
    from ui import data, jobs  # the job board imports torch: only when a training is asked for

    spec = attempt("Checking the parameters", runs.run_spec, QUICK_MODEL[0], {})
    if runs.result(spec) is None:
        split = attempt("Splitting the data", data.current_split)
        job = attempt(f"Queueing {QUICK_MODEL[1]}", jobs.submit, spec, split)
        bar = st.progress(0.0, text=f"{QUICK_MODEL[1]}: {jobs.wait_text(job)}")
        while not job.finished_running:
            time.sleep(0.2)
            queued = job.status == jobs.QUEUED
            text = jobs.wait_text(job) if queued else f"training, step {job.step} of {job.total}"
            bar.progress(0.0 if queued else min(1.0, job.step / max(job.total, 1)), text=f"{QUICK_MODEL[1]}: {text}")
        jobs.acknowledge(job)
        bar.empty()
        if job.status != jobs.DONE:
            st.error(f"Training {QUICK_MODEL[1]} did not finish: {md_escape(job.error or job.status)}")
            st.stop()
        spec = job.entry["spec"] if job.entry else spec
    state.add_run(spec)
    st.rerun()


st.title("Homepage")
st.caption("The page a model would build for one person: rows of titles, each with the reason it is there. "
           "Turn the knobs a streaming service turns and watch the page and its metrics change.")

def offer_quick_train() -> None:
    if st.button(f"Train {QUICK_MODEL[1]} now", key="hp_quick_train", type="primary"):
        quick_train()


models = pages.require_trained(advice=f"A homepage needs one: train {QUICK_MODEL[1]} here in a few seconds, "
                                      "or any model on the Train page.", offer=offer_quick_train)


@st.cache_resource(show_spinner="Preparing the catalogue…", max_entries=8)
def builder_for(run_id: str, created_at: str, _model) -> HomepageBuilder:
    """One builder per trained run (per-dataset work such as trending counts happens once)."""
    return HomepageBuilder(_model)


def load_model(name: str):
    """(the run's entry, its fitted model); stops the page with a message when the model is not stored."""
    entry = runs.result(models[name])
    model = entry["model"] if entry is not None else None
    if model is None:
        st.error(f"The model of {md_escape(name)} is not stored on this server; train it again on the Train page.")
        st.stop()
    return entry, model


def load_builder(name: str) -> HomepageBuilder:
    entry, model = load_model(name)
    return attempt("Preparing the homepage", builder_for, models[name]["run_id"], str(entry.get("created_at", "")),
                   model)


def per_row_builder(base: HomepageBuilder, main: str) -> HomepageBuilder:
    """The main model's builder with the rows chosen in the "Model per row" panel given their own models."""
    kinds = base.row_kinds()
    with st.expander("Model per row", expanded=True):
        st.caption(f"Each kind of row can come from its own trained model (all on this dataset and split); rows "
                   f"left at the default come from {md_escape(main)}. Trending and Watch it again use no model. Rows are "
                   "ordered by each model's percentile ranks, so rows of different models compare.")
        choices = {}
        for column, (kind, label) in zip(st.columns(len(kinds)), kinds.items()):
            choices[kind] = column.selectbox(
                label, [SAME_AS_MAIN, *names], key=f"hp_row_model_{kind}",
                format_func=lambda name: f"Same as main ({main})" if name == SAME_AS_MAIN else name)
    chosen = {kind: name for kind, name in choices.items() if name not in (SAME_AS_MAIN, main)}
    if not chosen:
        return base
    row_models = {kind: load_model(name)[1] for kind, name in chosen.items()}
    try:
        return base.with_row_models(row_models, names=chosen)
    except DataError as exc:
        st.error(md_escape(exc))
        st.stop()


def knobs(suffix: str, container, narrow: bool = False) -> PageSettings:
    """The re-ranking knobs; ``suffix`` keeps the widget keys of two sides apart.

    One row of four when the knobs span the page; two rows of two when ``narrow`` (half the page, side by side):
    four columns in half a page leave a toggle about 70 px, which cut "No title twice" to "N" and crowded the
    slider values."""
    if narrow:
        first, second = container.columns(2), container.columns(2)
        alpha_col, lambda_col, tail_col, dedupe_col = (*first, *second)
    else:
        alpha_col, lambda_col, tail_col, dedupe_col = container.columns([3, 3, 3, 2])
    alpha = alpha_col.slider("Popularity blend α", 0.0, 1.0, 0.0, 0.05, key=f"hp_alpha{suffix}",
                             help="score' = (1−α)·model + α·popularity, both scaled to [0, 1]. 1 = most popular.")
    lam = lambda_col.slider("Relevance ↔ diversity λ", 0.0, 1.0, 1.0, 0.05, key=f"hp_lambda{suffix}",
                            help="MMR: 1 = pure relevance; lower values trade relevance for titles unlike those "
                                 "already in the row (by genre, else by embeddings).")
    tail = tail_col.slider("Long-tail floor (% of a row)", 0, 100, 0, 10, key=f"hp_tail{suffix}",
                           help="At least this share of every recommended row comes from the long tail "
                                "(outside the 20 % most popular titles).")
    dedupe = dedupe_col.toggle("No title twice", value=True, key=f"hp_dedupe{suffix}",
                               help="De-duplicate across rows: a title appears only in its highest row.")
    return PageSettings(row_length=int(st.session_state.get("hp_length", 10)),
                        max_rows=int(st.session_state.get("hp_rows", 8)),
                        dedupe=dedupe, alpha=alpha, mmr_lambda=lam, tail_share=tail / 100.0)


def choose_person(builder: HomepageBuilder, who: str) -> tuple[str, object]:
    """("user", code) or ("new", [item codes]); stops the page with a message when the choice is incomplete."""
    train = builder.train
    if who in ("light", "heavy"):
        code = typical_users(train)[who]
        st.caption(f"User {md_escape(train.user_ids[code])}: {train.user_activity[code]:,} interactions in training "
                   f"(the {'10th' if who == 'light' else '90th'} percentile of activity).")
        return "user", code
    if who == "user":
        typed = st.text_input("User id", value=str(train.user_ids[0]), key="hp_user_id",
                              help=f"Any of the {train.n_users:,} user ids of the training set.")
        code = int(train.user_codes([typed.strip()])[0])
        if code < 0:
            st.error(f"There is no user {md_escape(repr(typed.strip()))} in this dataset. User ids look like "
                     f"{md_escape(', '.join(map(str, train.user_ids[:3])))}; pick one of those or a typical user.")
            st.stop()
        st.caption(f"User {md_escape(train.user_ids[code])}: {train.user_activity[code]:,} interactions in training.")
        return "user", code
    order = train.items_by_popularity()
    labels = builder.catalogue
    picks = st.multiselect(f"Pick {MIN_PICKS}–{MAX_PICKS} titles you like (most popular first; type to search)",
                           order.tolist(), key="hp_picks", max_selections=MAX_PICKS,
                           format_func=lambda i: labels.label(int(i)))
    if len(picks) < MIN_PICKS:
        st.info(f"Pick at least {MIN_PICKS} titles ({len(picks)} so far) and the page appears at once.")
        st.stop()
    return "new", [int(i) for i in picks]


def build(builder: HomepageBuilder, person: tuple[str, object], settings: PageSettings):
    """The page, or None with a warning when the model cannot serve this person (no fold-in)."""
    kind, who = person
    if kind == "new" and not supports_fold_in(builder.model):
        st.warning(f"{md_escape(builder.label)} cannot build a page for a new visitor: it only knows the users it was "
                   "trained on. Pick a model with fold-in (EASE, item-item kNN, iALS, PureSVD, content TF-IDF…).")
        return None
    try:
        if kind == "new":
            return builder.for_new_visitor(who, settings)
        return builder.for_user(who, settings)
    except DataError as exc:
        st.error(md_escape(exc))
        return None


# ---------------------------------------------------------------------------- controls
names = list(models)
if st.session_state.get("hp_model") not in names:
    st.session_state["hp_model"] = runs.strongest(models)
top = st.columns([3, 3, 1, 1, 2])
model_a = top[0].selectbox("Model", names, key="hp_model",
                           help="Opens on the trained run with the best NDCG@10 on this dataset and split.")
who = top[1].selectbox("Whose page?", list(WHO), format_func=WHO.get, key="hp_who")
top[2].number_input("Titles per row", 4, 20, 10, key="hp_length")
top[3].number_input("Rows", 2, 12, 8, key="hp_rows")
compare = top[4].selectbox("Side by side", ["off", "two models", "two knob settings"], key="hp_compare",
                           help="Build two pages for the same person and compare them.")

model_mode = st.radio("Models", list(MODEL_MODES), format_func=MODEL_MODES.get, horizontal=True,
                      key="hp_model_mode", help="One model builds every row, or each kind of row gets its own "
                                                "model (for example top picks by EASE, genre rows by iALS).")

builder_a = load_builder(model_a)
if model_mode == "per row":
    builder_a = per_row_builder(builder_a, model_a)
person = choose_person(builder_a, who)

if compare == "off":
    settings_a = knobs("", st.container(border=True))
    page = build(builder_a, person, settings_a)
    if page is not None:
        left, right = st.columns([5, 1])
        with left:
            tiles.show_page(page, builder_a.catalogue)
        with right:
            st.markdown("**This page**")
            tiles.show_metrics(page)
        mix = tiles.genre_mix({page.visitor: page}, builder_a.catalogue)
        if len(mix):
            st.altair_chart(tiles.genre_mix_chart(mix, f"Genre mix of the page ({builder_a.description})"),
                            width="stretch")
    st.stop()

# ---------------------------------------------------------------------------- side by side
# every control comes before the two columns, so the columns start level and the knobs sit above the pages
if compare == "two models":
    others = [n for n in names if n != model_a] or names
    model_b = st.columns([3, 7])[0].selectbox("Second model (B)", others, key="hp_model_b")
    builder_b = load_builder(model_b)
    shared = knobs("", st.container(border=True))
    label_a = f"A: {model_a} + per-row models" if builder_a.row_models else f"A: {model_a}"
    a_col, b_col = st.columns(2)
    sides = {label_a: (builder_a, shared), f"B: {model_b}": (builder_b, shared)}
else:
    a_col, b_col = st.columns(2)
    sides = {"A: knobs A": (builder_a, knobs("", a_col.container(border=True), narrow=True)),
             "B: knobs B": (builder_a, knobs("_b", b_col.container(border=True), narrow=True))}

pages = {}
for column, (label, (side_builder, side_settings)) in zip((a_col, b_col), sides.items()):
    with column:
        st.subheader(md_escape(label))
        side_page = build(side_builder, person, side_settings)
        if side_page is not None:
            pages[label] = side_page
            tiles.show_page(side_page, side_builder.catalogue)

if pages:
    st.subheader("Page metrics")
    st.dataframe(tiles.metrics_table(pages), width="stretch")
    mix = tiles.genre_mix(pages, builder_a.catalogue)
    if len(mix):
        # two models: each page in its model's colour, as on Compare; two knob settings keep the default pair
        model_colours = charts.run_colours(pages) if compare == "two models" else None
        if model_colours is not None and len(set(model_colours.range)) < 2:
            model_colours = None  # two runs of one model would share a colour
        st.altair_chart(tiles.genre_mix_chart(mix, "Genre mix of the two pages", model_colours), width="stretch")

"""Shareable links: the Compare view (dataset, split, runs, user, K) in the URL's query parameters.

A link carries only names and settings, never data: a fresh session that opens it selects the
same dataset and split in the sidebar, finds the runs by id in the server's run store and shows
the same table and charts. Ids the server does not know are reported by name, not dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from urllib.parse import urlencode

import streamlit as st

from recsys.data.split import POSITIVES, SPLIT_METHODS  # the one list of names, in the backend
from ui import runs, state
from ui.text import md_escape

# query parameter -> (SplitConfig field, sidebar widget key)
SPLIT_PARAMS = {"split": ("method", "sidebar_split"), "test": ("test_fraction", "sidebar_test"),
                "n": ("n", "sidebar_n"), "seed": ("seed", "sidebar_seed"), "pos": ("positives", "sidebar_pos"),
                "t": ("threshold", "sidebar_t"), "valid": ("validation", "sidebar_valid"),
                "vf": ("valid_fraction", "sidebar_vf")}
APPLIED = "_share_link_applied"
# The Compare page's views (key -> label); the link names the one that was open.
VIEWS = {"overview": "Overview", "tradeoffs": "Trade-offs & exposure", "users": "Users", "sweep": "Sweep",
         "sampled": "Full vs sampled"}


@dataclass
class Link:
    """What a link asks for; ``problems`` lists the parameters that could not be read, in plain words."""

    dataset: str | None = None
    split: dict = field(default_factory=dict)  # SplitConfig field -> value, only those the link names
    run_ids: list[str] = field(default_factory=list)
    user: str | None = None
    k: int | None = None
    view: str | None = None
    problems: list[str] = field(default_factory=list)


def encode(dataset: str, config: state.SplitConfig, run_ids: list[str], user: str | None, k: int,
           view: str = "overview") -> dict[str, str]:
    """Query parameters for a view; every value a string, runs comma-separated in display order."""
    params = {"dataset": dataset}
    by_field = {f.name: getattr(config, f.name) for f in fields(config)}
    for name, (field_name, _) in SPLIT_PARAMS.items():
        value = by_field[field_name]
        params[name] = ("1" if value else "0") if isinstance(value, bool) else str(value)
    params["runs"] = ",".join(run_ids)
    if user is not None:
        params["user"] = str(user)
    params["k"] = str(k)
    params["view"] = view
    return params


def decode(params: dict[str, str]) -> Link:
    """Read a link's parameters; a malformed one is named in ``problems`` and otherwise ignored."""
    link = Link(dataset=params.get("dataset") or None, user=params.get("user") or None)
    link.run_ids = [r for r in (params.get("runs") or "").split(",") if r]
    readers = {"split": _choice(SPLIT_METHODS), "test": _number(float, 0.05, 0.5), "n": _number(int, 1, 20),
               "seed": _number(int, 0, 2**31 - 1), "pos": _choice(POSITIVES), "t": _number(float, 0.0, 100.0),
               "valid": _flag, "vf": _number(float, *state.VALID_FRACTION_RANGE)}
    for name, read in readers.items():
        if name not in params:
            continue
        value, problem = read(params[name])
        if problem:
            link.problems.append(f"'{name}={params[name]}' {problem}")
        else:
            link.split[SPLIT_PARAMS[name][0]] = value
    if "k" in params:
        value, problem = _choice(tuple(str(k) for k in runs.EVAL_K))(params["k"])
        if problem:
            link.problems.append(f"'k={params['k']}' {problem}")
        else:
            link.k = int(value)
    if "view" in params:
        value, problem = _choice(tuple(VIEWS))(params["view"])
        if problem:
            link.problems.append(f"'view={params['view']}' {problem}")
        else:
            link.view = value
    return link


def _choice(options: tuple):
    def read(raw: str):
        return (raw, None) if raw in options else (None, f"is not one of {', '.join(options)}")
    return read


def _flag(raw: str):
    value = {"1": True, "true": True, "0": False, "false": False}.get(raw.strip().lower())
    return (value, None) if value is not None else (None, "is not 1 or 0")


def _number(kind: type, low, high):
    def read(raw: str):
        try:
            value = kind(raw)
        except ValueError:
            return None, f"is not a{'n integer' if kind is int else ' number'}"
        if not low <= value <= high:
            return None, f"lies outside {low}–{high}"
        return value, None
    return read


def link_url(params: dict[str, str]) -> str:
    """The page's address with ``params`` as its query (relative when the browser address is unknown)."""
    base = (st.context.url or "").split("?", 1)[0]
    return f"{base}?{urlencode(params)}"


# ---------------------------------------------------------------------- reading a link on load
def apply_link() -> list[str]:
    """Adopt the URL's view once per session; returns warnings (unknown runs, unreadable parameters).

    Sidebar widgets are already drawn when a page runs, so their values are handed to
    ``state.init`` (which sets them before drawing) and the script reruns once.
    """
    params = st.query_params.to_dict()
    ss = st.session_state
    if not params.get("runs") or ss.get(APPLIED) == params:
        return []
    link = decode(params)
    if link.dataset and link.dataset not in state.sources() and ss.get("_share_source_added") != params:
        source = runs.shared_source(link.dataset)  # loaded from this server's disk by someone: open it here too
        if source is not None:
            ss["_share_source_added"] = params  # once: the rerun then moves the sidebar as below
            state.add_source(source)
            st.rerun()
    pending = _sidebar_changes(link)
    if pending and ss.get("_share_link_pending") != params:
        ss["_share_link_pending"] = params  # rerun once only, even if a value cannot be taken
        ss["_apply_widgets"] = pending
        st.rerun()
    ss[APPLIED] = params
    # a link is typed by anyone: every value it carries is escaped before it reaches markdown
    warnings = [f"The link's {md_escape(p)}; it was ignored." for p in link.problems]
    if link.dataset and link.dataset not in state.sources():
        warnings.append(f"The link is for the dataset '{md_escape(link.dataset)}', which this session has not loaded. "
                        "Load it on the Data page, then open the link again.")
        return warnings
    warnings += _adopt_runs(link)
    if link.k is not None:
        ss["compare_k"] = link.k
    if link.user is not None:
        ss["compare_user"] = link.user
    if link.view is not None:
        ss["compare_view"] = link.view
    return warnings


def _sidebar_changes(link: Link) -> dict:
    """Sidebar widget values the link asks for that differ from the current ones."""
    wanted = {SPLIT_PARAMS[name][1]: link.split[field_name]
              for name, (field_name, _) in SPLIT_PARAMS.items() if field_name in link.split}
    if link.dataset in state.sources():
        wanted["sidebar_dataset"] = link.dataset
    return {key: value for key, value in wanted.items() if state.sidebar_value(key) != value}


def _adopt_runs(link: Link) -> list[str]:
    """Add the link's runs to this session; name the ones this server cannot find or that belong elsewhere."""
    unknown, elsewhere, found = [], [], []
    current = state.current_source()["label"]
    split_key = state.split_config().key()
    for run_id in link.run_ids:
        spec = runs.lookup(run_id)
        if spec is None:
            unknown.append(run_id)
        elif spec["dataset"] != current or tuple(spec["split"]) != tuple(split_key):
            elsewhere.append(run_id)
        else:
            state.add_run(spec)
            found.append(run_id)
    st.session_state["compare_runs"] = found
    warnings = []
    if unknown:
        warnings.append(f"The link names run(s) this server does not have: {md_escape(', '.join(unknown))}. They may have "
                        "been deleted, or trained on another server; train them again on the Train page.")
    if elsewhere:
        warnings.append(f"Run(s) {md_escape(', '.join(elsewhere))} were trained on another dataset or split than the link's, "
                        "so they are not shown beside the others.")
    return warnings


def write(dataset: str, run_ids: list[str], user: str | None, k: int, view: str) -> str:
    """Put the current view in the URL and return the full link to share."""
    params = encode(dataset, state.split_config(), run_ids, user, k, view)
    if st.query_params.to_dict() != params:
        st.query_params.from_dict(params)
    st.session_state[APPLIED] = params  # the session's own view is not a link to adopt again
    return link_url(params)


# ---------------------------------------------------------------------- chart export
EXPORT_WIDTH = 900  # on the page a chart follows its column's width; a file needs a fixed one


def can_render() -> bool:
    """Whether charts can be rendered to PNG/SVG on the server (vl-convert is an optional dependency)."""
    try:
        import vl_convert  # noqa: F401
    except ImportError:
        return False
    return True


def render(chart, fmt: str) -> bytes:
    """The chart as PNG or SVG bytes, rendered on click (deferred download), at a fixed width."""
    import vl_convert

    spec = chart.properties(width=EXPORT_WIDTH).to_dict()
    spec.pop("autosize", None)  # "fit-x" needs a container; a file has none
    if fmt == "png":
        return vl_convert.vegalite_to_png(spec, scale=2)
    if fmt == "svg":
        return vl_convert.vegalite_to_svg(spec).encode()
    raise ValueError(f"Unknown export format {fmt!r}; choose png or svg.")

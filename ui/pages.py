"""Blocks that several pages open with."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import streamlit as st

from recsys.models import registry
from recsys.models.capabilities import example_list, has
from ui import runs

SHOWN_PAGES = "shown_pages"


def remember_shown(pages: list) -> list:
    """Note which pages the navigation offers (a workshop preset may hide some) and return them."""
    st.session_state[SHOWN_PAGES] = {page.url_path or "data" for page in pages}
    return pages


def link(path: str, label: str, icon: str | None = None) -> None:
    """``st.page_link`` to a page of the app, drawn only when the navigation offers that page:
    a link to a page a workshop preset hides would stop the page with an error."""
    shown = st.session_state.get(SHOWN_PAGES)
    if shown is not None and Path(path).stem not in shown:
        return
    st.page_link(path, label=label, icon=icon)


def trained_with(*capabilities: str) -> dict[str, dict]:
    """{display name: spec} of the finished runs on this dataset and split whose model class has every
    one of ``capabilities`` (``recsys.models.capabilities`` names; none = every trained model)."""
    return {name: spec for name, spec in runs.trained_here().items()
            if has(registry.get(spec["model"]), *capabilities)}


def require_trained(*capabilities: str, what: str = "", advice: str | None = None,
                    offer: Callable[[], None] | None = None) -> dict[str, dict]:
    """The trained runs a page can show (see ``trained_with``); when there are none, say so and stop.

    The page then shows "No trained model {what} on this dataset and split yet." with ``advice``,
    whatever ``offer`` draws (a quick-train button), and a link to the Train page. ``{examples}``
    in the advice becomes a few registered models that have the capabilities: worked out only
    here, because it imports every model family.
    """
    found = trained_with(*capabilities)
    if found:
        return found
    if advice is None:
        advice = "Train one, such as {examples}, on the Train page."
    if "{examples}" in advice:
        advice = advice.replace("{examples}", example_list(*capabilities))
    st.info(" ".join(part for part in (f"No trained model{' ' + what if what else ''} on this dataset and split "
                                       "yet.", advice) if part))
    if offer is not None:
        offer()
    link("app_pages/train.py", label="Go to Train", icon=":material/model_training:")
    st.stop()

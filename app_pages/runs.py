"""Runs page: every stored run this visitor may see; rename, delete, export and import bundles.

Visitors rename and delete only their own runs; shared runs change only for instructors (the
store checks it too). On a hosted server a visitor becomes instructor by signing in with a
listed account or typing the host's instructor key here."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from recsys import hosting
from recsys.store import SHARED, Actor, run_rows
from ui import identity, lessons, pages, runs
from ui.errors import shown_errors
from ui.text import md_escape

st.title("Runs")
st.caption("Every trained run is kept in the experiment store and survives a server restart. Runs on the sample "
           "and on server-side data are shared by everyone; runs on your uploads are visible to you alone.")

store = runs.store()
owner = runs.owner_token()
records = store.list(owner=owner)
actor = Actor(owner=owner, instructor=identity.is_instructor())


def table(rows: list[dict]) -> None:
    frame = pd.DataFrame(rows)
    frame = frame[[c for c in frame.columns if c != "run_id"] + ["run_id"]]  # the id last: for the CLI and links
    st.dataframe(frame, hide_index=True, width="stretch", key="runs_table", column_config={
        "ndcg@10": st.column_config.NumberColumn("NDCG@10", format="%.4f"),
        "model stored": st.column_config.CheckboxColumn("model stored"),
        "run_id": st.column_config.TextColumn("run id"),
    })


def manage(by_id: dict) -> None:
    """Rename or delete one run this visitor may change (deleting asks first); shared runs are read-only
    for visitors, and the page says why."""
    ss = st.session_state
    owners = {record.run_id: record.owner for record in records}
    read_only = [r for r in by_id if not actor.may_change(owners.get(r, SHARED))]
    by_id = {r: row for r, row in by_id.items() if r not in read_only}
    if read_only:
        st.caption(f"{len(read_only)} shared run(s) are read-only for you: everyone on this server uses them, so only "
                   "an instructor may rename or delete them. Your own runs (on your uploads, or imported by you) you "
                   "may change.")
    if not by_id:
        st.info("You have no runs of your own to rename or delete.")
        return
    run_id = st.selectbox("Run", list(by_id), format_func=lambda r: f"{by_id[r]['name']} · {by_id[r]['dataset']} "
                                                                    f"· {by_id[r]['split']}", key="runs_pick")
    new_name = st.text_input("New name", value=by_id[run_id]["name"], key=f"runs_name_{run_id}")
    rename_col, delete_col, _ = st.columns([1, 1, 3])
    if rename_col.button("Rename", key="runs_rename", icon=":material/edit:"):
        with shown_errors("Renaming the run"):
            store.rename(run_id, new_name, actor=actor)
            old_name = by_id[run_id]["name"]
            ss["runs_message"] = (f"Renamed {md_escape(old_name)} to {md_escape(new_name.strip())}."
                                  if new_name.strip() != old_name else f"{md_escape(old_name)} keeps its name.")
            st.rerun()
    if delete_col.button("Delete…", key="runs_delete", icon=":material/delete:"):
        ss["runs_confirm"] = run_id
    if ss.get("runs_confirm") == run_id:
        # only a run whose model is stored has one to lose (an imported run may hold numbers alone)
        what = " and its stored model" if by_id[run_id].get("model stored") else ""
        st.warning(f"Delete {md_escape(by_id[run_id]['name'])}{what}? This cannot be undone.")
        yes_col, no_col, _ = st.columns([1, 1, 3])
        if yes_col.button("Yes, delete", key="runs_delete_yes", type="primary"):
            with shown_errors("Deleting the run"):
                store.delete(run_id, actor=actor)
                ss.pop("runs_confirm", None)
                ss["runs_message"] = f"Deleted {md_escape(by_id[run_id]['name'])}."
                st.rerun()
        if no_col.button("Keep it", key="runs_delete_no"):
            ss.pop("runs_confirm", None)
            st.rerun()


def export(by_id: dict) -> None:
    done = [r for r in by_id if by_id[r]["status"] == "done"]
    if not done:
        st.caption("No finished runs to export yet.")
        return
    # The choice is kept by run id and handed back to the widget each run: a rename changes the names the
    # widget shows, and Streamlit then treats it as a new widget and forgets the choice.
    ss = st.session_state
    known = ss.get("_runs_export_known", [])
    current = ss.get("runs_export_pick", ss.get("_runs_export_chosen", done))  # the person's latest choice
    kept = [r for r in current if r in done]
    ss["runs_export_pick"] = kept + [r for r in done if r not in known and r not in kept]
    chosen = st.multiselect("Runs to export", done, key="runs_export_pick", format_func=lambda r: by_id[r]["name"])
    ss["_runs_export_chosen"], ss["_runs_export_known"] = list(chosen), list(done)
    with_models = st.checkbox("Include the trained models (bigger file)", key="runs_export_models")
    if chosen:
        st.download_button("Download experiment bundle (.zip)", key="runs_export",
                           data=lambda: store.export_bundle(chosen, include_models=with_models),
                           file_name="recsys-experiment-bundle.zip", mime="application/zip",
                           icon=":material/download:", on_click="ignore")


def import_bundle() -> None:
    if not lessons.uploads_allowed():
        st.caption("Importing bundles is off on this workshop's server (its preset turns uploads off).")
        return
    limits = hosting.config().limits
    upload = st.file_uploader("Experiment bundle (.zip)", type=["zip"], key="runs_import_file",
                              help="A bundle exported from this page, here or on another server.",
                              max_upload_size=max(1, -(-limits.bundle_bytes // hosting.MB)))
    if upload is not None and st.button("Import", key="runs_import", icon=":material/upload:"):
        if upload.size > limits.bundle_bytes:  # before its bytes are copied out of the upload
            st.error(f"The bundle is {hosting.human_bytes(upload.size)}; this server imports bundles of up to "
                     f"{hosting.human_bytes(limits.bundle_bytes)}. Export fewer runs, or export them without their "
                     "models.", icon=":material/warning:")
            return
        with shown_errors("Importing the bundle"):
            outcome = store.import_bundle(upload.getvalue(), owner, limits=limits)
            message = f"Imported {len(outcome['imported'])} run(s)"
            if outcome["skipped"]:
                message += f"; {len(outcome['skipped'])} were already here"
            st.session_state["runs_message"] = message + "."
            st.rerun()


def instructor_sign_in() -> None:
    """Hosted: the role this visitor holds, and the instructor key field."""
    config = hosting.config()
    if identity.is_instructor():
        st.caption("You are signed in as instructor: you may rename and delete shared runs.")
        if identity.signed_in_with_key() and st.button("Sign out as instructor", key="runs_instructor_out"):
            identity.sign_out_instructor()
            st.rerun()
        return
    if not config.instructor_key:
        st.caption("You are a visitor: you change only your own runs. This server offers no instructor key.")
        return
    with st.form("runs_instructor"):
        key = st.text_input("Instructor key", type="password", key="runs_instructor_key",
                            help="The key the host of this server gave the instructors.")
        if st.form_submit_button("Sign in as instructor"):
            if identity.sign_in_as_instructor(key):
                st.session_state["runs_message"] = "Signed in as instructor."
                st.rerun()
            st.error("That is not this server's instructor key; ask the host for it, or keep working as a visitor.")


if message := st.session_state.pop("runs_message", None):
    st.success(message)
rows = run_rows(store, records, owner)
if rows:
    finished = [row for row in rows if row["status"] == "done" and row["ndcg@10"] is not None]
    if finished:
        best = max(finished, key=lambda row: row["ndcg@10"])
        st.caption(f"{len(rows)} run(s) stored · best NDCG@10: {md_escape(best['name'])} = {best['ndcg@10']:.4f} "
                   f"({md_escape(best['dataset'])}, {md_escape(best['split'])})")
    table(rows)
    by_id = {row["run_id"]: row for row in rows}
    st.subheader("Rename or delete")
    manage(by_id)
    st.subheader("Export")
    export(by_id)
else:
    st.info("No runs stored yet. Train some on the Train page, or import a bundle below.")
    pages.link("app_pages/train.py", label="Go to Train", icon=":material/model_training:")
st.subheader("Import")
import_bundle()
if hosting.config().hosted:
    st.subheader("Instructor sign-in")
    instructor_sign_in()

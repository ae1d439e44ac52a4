"""Simulate page: the course's online half. Pick a preset, set its knobs, run it and watch the rounds
unfold, with the lesson computed from this run's numbers.

Every simulation lives in recsys.simulation; this page reads the widgets, calls a preset with a
progress callback and draws what it returns (ui.simulate).
"""

from __future__ import annotations

import streamlit as st

from recsys.export import safe_csv
from recsys.simulation import presets as catalogue
from ui import runs
from ui import simulate as sim
from ui.errors import attempt, shown_errors

st.title("Simulate")
st.caption("What happens once recommendations are shown to people: feedback loops, experiments, position bias "
           "and models going stale, each run in seconds in a simulated world whose true tastes are known.")

with st.expander("Why simulate", expanded=False):
    st.markdown(
        "Offline metrics are computed on logs that the previous recommender produced: people could only click "
        "what they were shown, and mostly what was shown near the top. A simulated world knows every person's "
        "*true* taste for every item, so it can show what the logs hide: the loop that narrows what everyone "
        "sees, the offline metric that rises while clicks do not, the A/B test that spends traffic a bandit "
        "would save, and the model that goes stale as tastes drift.\n\n"
        "Each preset sets its knobs to tell one of these stories; change them and run again. The same knobs and "
        "seed always give the same rounds, here and with `python -m recsys simulate`.")

available = attempt("Loading the simulations", catalogue.presets)
keys = list(available)
chosen = st.session_state.get(sim.CHOSEN)  # widget state is dropped on a page switch; this is not
key = st.radio("Simulation", keys, format_func=lambda k: available[k].label, horizontal=True, key="simulate_preset",
               index=keys.index(chosen) if chosen in keys else 0)
st.session_state[sim.CHOSEN] = key
preset = available[key]
st.markdown(preset.blurb)

last = sim.remembered(key)
# the bandit's arms, or a simulation's world, can be trained runs of the current dataset and split
in_world, with_policy = sim.takes_world(preset), sim.takes_trained(preset)
trained = runs.trained_here() if key == sim.ARMS_PRESET or in_world or with_policy else {}
controls, output = st.columns([1, 2.6], gap="large")
with controls, st.form(f"simulate_form.{key}"):
    knobs = sim.knob_widgets(preset.describe(), f"simulate_knob.{key}", last.get("knobs"), columns=1)
    seed = int(st.number_input("Seed", 0, 2**31 - 1, value=int(last.get("seed", 0)), key=f"simulate_seed.{key}",
                               help="The same knobs and seed give the same rounds."))
    arms = sim.arm_widgets(trained, last.get("arms")) if len(trained) >= 2 else None
    if key == sim.ARMS_PRESET and len(trained) < 2:
        st.caption("Train two or more models on the Train page to make them the arms, in a world whose truth is "
                   "a third model's scores.")
    world_run = sim.world_widgets(trained, last.get("world")) if in_world and trained else None
    policy = sim.policy_widgets(trained, last.get("policy")) if with_policy and trained else None
    if with_policy and not trained:
        st.caption("Train a model on the Train page to make it the recommender in this loop.")
    run_clicked = st.form_submit_button("Run", type="primary", icon=":material/play_arrow:", width="stretch")


def simulate(live: sim.LiveView):
    if world_run is not None or policy is not None:
        return sim.run_with_runs(preset, knobs, seed, live, trained, world_run, policy)
    if arms is None:
        return preset(seed=seed, progress=live, **knobs)
    rates = sim.arm_rates(trained, arms, seed)
    return preset.run(preset.knobs(**knobs), seed=seed, progress=live, arm_rates=rates, arm_labels=arms["arms"])


with output:
    if run_clicked:
        sim.remember(key, knobs, seed, arms, world_run, policy)
        # runs in play are named by their ids too: a name can be given to another run
        used = [*arms["arms"], arms["truth"]] if arms else [n for n in (world_run, policy and policy["run"]) if n]
        wanted = sim.result_key(key, knobs, seed, used and {"arms": arms, "world": world_run, "policy": policy,
                                                             "ids": [trained[n]["run_id"] for n in used]})
        if sim.stored(wanted) is not None:
            sim.keep(key, wanted, sim.stored(wanted))  # already run this session: the same rounds again
        else:
            with sim.one_at_a_time(runs.owner_token()) as free:
                if not free:
                    st.warning("A simulation you started is still running in another tab or window; press Run "
                               "again when it has finished.", icon=":material/hourglass_top:")
                else:
                    with shown_errors(f"Running {preset.label}"):
                        live = sim.LiveView(preset.label, budget_s=sim.run_budget())
                        try:
                            result = simulate(live)
                        finally:
                            live.clear()
                        sim.keep(key, wanted, result)
                    if sim.stored(wanted) is None:
                        st.stop()  # the message says what to change; an older run's charts would mislead

    latest = sim.shown(key)
    if latest is None:
        st.info("Set the knobs and press **Run**: the charts fill in round by round.", icon=":material/play_arrow:")
        st.stop()
    result_id, result = latest
    sim.show_result(result, result_id, safe_csv(result.rounds))

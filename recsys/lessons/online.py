"""The online half: what happens once recommendations are shown, answered by the Simulate presets.

Each lesson runs one preset of :mod:`recsys.simulation` with small knobs (a few seconds on a busy
2-core machine) and decides its answer from the run's ``summary``, the same figures the
Simulate page's takeaway quotes. The lessons train nothing through the experiment store: a
simulated world is built and thrown away per run, so a prepared workshop opens them at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import pandas as pd

from recsys.lessons.base import Context, Lesson, LessonResult, Setup
from recsys.models.base import param
from recsys.simulation import presets as catalogue
from recsys.simulation.result import SimulationResult

# two figures closer than this are "the same" for a verdict: below the runs' own round-to-round noise
TIE = 0.005
ONLINE = "Online experiments"
DEPLOYMENT = "Deployment"
LOOPS = "Feedback loops"


def simulate(preset: str, knobs, *, rename: dict[str, str] | None = None) -> SimulationResult:
    """Run ``preset`` with the lesson's knobs (``rename``: lesson knob name -> preset knob name).

    The lesson's ``seed`` knob is the simulation's seed; every other knob is passed on by name.
    """
    values = asdict(knobs)
    seed = int(values.pop("seed"))
    for ours, theirs in (rename or {}).items():
        values[theirs] = values.pop(ours)
    return catalogue.get(preset)(seed=seed, **values)


def _rounds_table(result: SimulationResult, metrics: list[str]) -> pd.DataFrame:
    """The run's per-round figures a lesson charts: (round, series, metric...) rows, like the Simulate page's."""
    return result.rounds[["round", "series", *metrics]].reset_index(drop=True)


def _order(first: float, second: float) -> int:
    """0 when ``first`` is clearly larger, 1 when ``second`` is, 2 when they are within TIE."""
    if abs(first - second) <= TIE:
        return 2
    return 0 if first > second else 1


def _percent(value: float) -> str:
    return f"{100.0 * value:.1f} %"


# ---------------------------------------------------------------------------- offline NDCG up, clicks flat
OFFLINE_CHOICES = ("The model with the higher offline NDCG", "The model with the lower offline NDCG",
                   "Neither: people click both alike")


@dataclass
class OfflineKnobs:
    rounds: int = param(8, help="Rounds of logging, retraining and judging.", low=2, high=20)
    logging_epsilon: float = param(0.1, help="Share of the production system's slots shown at random "
                                             "(0 = the log holds only its own choices).", low=0.0, high=1.0,
                                   step=0.05)
    candidate_b: str = param("item_knn", help="The challenger judged against the production model.",
                             choices=("item_knn", "user_knn", "pop"))
    seed: int = param(0, help="Seed of the simulated world and its clicks.", low=0)


def offline_vs_online(knobs: OfflineKnobs, context: Context) -> LessonResult:
    result = simulate("offline_vs_online", knobs)
    s = result.summary
    offline_a_wins = s["a_offline_ndcg"] >= s["b_offline_ndcg"]
    winner, loser = ("a", "b") if offline_a_wins else ("b", "a")
    verdict = _order(s[f"{winner}_true_utility"], s[f"{loser}_true_utility"])
    names = {"a": result.series[0], "b": result.series[1]}
    figures = {
        "offline_winner_ndcg": s[f"{winner}_offline_ndcg"], "offline_loser_ndcg": s[f"{loser}_offline_ndcg"],
        "offline_winner_utility": s[f"{winner}_true_utility"], "offline_loser_utility": s[f"{loser}_true_utility"],
        "rounds_disagree": s["rounds_offline_and_online_disagree"], "rounds": float(knobs.rounds),
    }
    explanation = (
        f"On the logged clicks {names[winner]} averaged NDCG@10 {figures['offline_winner_ndcg']:.3f} against "
        f"{figures['offline_loser_ndcg']:.3f} for {names[loser]}; with people, the lists of {names[winner]} had a "
        f"mean true click probability of {figures['offline_winner_utility']:.3f} against "
        f"{figures['offline_loser_utility']:.3f}, and the offline winner lost online in "
        f"{figures['rounds_disagree']:.0f} of {knobs.rounds} rounds. "
        + ("The log only holds clicks on what the production model chose to show, so a model that imitates it "
           "scores well offline without showing people anything better."
           if verdict == 1 else
           "Here the offline ranking held online: raise the production model's share of the log (lower its "
           "random share) to see the two part ways." if verdict == 0 else
           "Here the two were within half a point of each other with people: offline NDCG told them apart "
           "more than people did.")
    )
    table = pd.DataFrame({
        "model": [names["a"], names["b"]],
        "offline NDCG@10 (logged clicks)": [s["a_offline_ndcg"], s["b_offline_ndcg"]],
        "true click probability (people)": [s["a_true_utility"], s["b_true_utility"]],
    })
    return LessonResult(figures=figures, correct=verdict, explanation=explanation, tables={
        "Offline against online": table,
        "Rounds": _rounds_table(result, ["offline_ndcg", "true_utility"])})


# ---------------------------------------------------------------------------- A/B test or bandit
BANDIT_CHOICES = ("The fixed A/B test", "Thompson sampling", "Neither: they lose the same")
PEEKING_CHOICES = ("About alpha, as planned", "Well above alpha", "Well below alpha")


@dataclass
class BanditKnobs:
    rate_1: float = param(0.040, help="True click rate of the control version.", low=0.005, high=0.2, step=0.001)
    rate_2: float = param(0.046, help="True click rate of the new version.", low=0.005, high=0.2, step=0.001)
    rounds: int = param(40, help="Rounds of traffic.", low=5, high=100)
    visitors_per_round: int = param(2000, help="Visitors arriving per round.", low=200, high=5000, step=100)
    runs: int = param(100, help="Repeated experiments averaged (more: steadier figures, slower).", low=20, high=300)
    null_runs: int = param(600, help="A/A experiments (two equal versions) counted for false positives.",
                           low=100, high=2000, step=100)
    seed: int = param(0, help="Seed of the visitors' clicks.", low=0)


def ab_vs_bandit(knobs: BanditKnobs, context: Context) -> LessonResult:
    result = simulate("bandit_vs_ab", knobs)
    s = result.summary
    ab, thompson = s["regret_ab_fixed"], s["regret_thompson"]
    # "the same" within 5 % of the larger loss: regret is a count of clicks, not a rate
    correct = 2 if abs(ab - thompson) <= 0.05 * max(ab, thompson) else (1 if thompson < ab else 0)
    figures = {"regret_ab_fixed": ab, "regret_thompson": thompson, "visitors": s["visitors"],
               "planned_per_arm": s["planned_per_arm"], "regret_epsilon_greedy": s["regret_epsilon_greedy"]}
    explanation = (
        f"Over {s['visitors']:,.0f} visitors the fixed A/B test lost {ab:.0f} clicks to the weaker version (it "
        f"keeps half the traffic on it until its planned {s['planned_per_arm']:,.0f} visitors per version), "
        f"Thompson sampling lost {thompson:.0f} and ε-greedy {s['regret_epsilon_greedy']:.0f}. "
        + ("A bandit moves traffic to the better version as evidence comes in, so it pays less for learning; "
           "the A/B test buys a clean, planned comparison with those clicks." if correct == 1 else
           "Here the A/B test lost fewer: with versions this far apart it ends early and then shows the winner "
           "to everyone." if correct == 0 else
           "Here they lost about the same: the versions are so close that neither can tell them apart quickly.")
    )
    return LessonResult(figures=figures, correct=correct, explanation=explanation, tables={
        "Policies": result.tables["Policies"],
        "Rounds": _rounds_table(result, ["cumulative_regret", "traffic_share_best"])})


@dataclass
class PeekingKnobs:
    rate_1: float = param(0.040, help="True click rate of both versions in the A/A runs (the control's).",
                          low=0.005, high=0.2, step=0.001)
    alpha: float = param(0.05, help="Significance level the test is planned at.", low=0.01, high=0.2, step=0.01)
    rounds: int = param(40, help="Rounds of traffic: one look at the p-value per round.", low=5, high=100)
    visitors_per_round: int = param(2000, help="Visitors arriving per round.", low=200, high=5000, step=100)
    null_runs: int = param(600, help="A/A experiments (two equal versions) counted.", low=100, high=2000, step=100)
    seed: int = param(0, help="Seed of the visitors' clicks.", low=0)


def peeking(knobs: PeekingKnobs, context: Context) -> LessonResult:
    # the policies' part of the run is kept small: this lesson reads only the A/A checks
    result = catalogue.get("bandit_vs_ab")(seed=knobs.seed, rate_1=knobs.rate_1, alpha=knobs.alpha,
                                           rounds=knobs.rounds, visitors_per_round=knobs.visitors_per_round,
                                           null_runs=knobs.null_runs, runs=20)
    s = result.summary
    fixed, peek, n = s["fpr_fixed"], s["fpr_peeking"], knobs.null_runs
    # a rate "is alpha" when within two binomial standard errors of it over these A/A runs
    margin = 2.0 * (knobs.alpha * (1 - knobs.alpha) / n) ** 0.5
    correct = 1 if peek > knobs.alpha + margin else 2 if peek < knobs.alpha - margin else 0
    figures = {"fpr_fixed": fixed, "fpr_peeking": peek, "alpha": knobs.alpha, "looks": s["fpr_looks"],
               "null_runs": float(n)}
    explanation = (
        f"In {n:,} A/A runs (both versions truly equal) one planned look at the end declared a winner in "
        f"{_percent(fixed)} of runs, close to alpha = {knobs.alpha:g}; stopping at the first of "
        f"{s['fpr_looks']:.0f} looks with p < {knobs.alpha:g} declared one in {_percent(peek)}. "
        + ("Every extra look is another chance for noise to cross the line, so the false winners add up."
           if correct == 1 else
           "With this few looks peeking barely adds chances: raise the rounds to see it grow." if correct == 0
           else "Fewer false winners than planned: the looks are too few and too small to cross the line.")
    )
    return LessonResult(figures=figures, correct=correct, explanation=explanation,
                        tables={"False positives over A/A runs": result.tables["False positives over A/A runs"]})


# ---------------------------------------------------------------------------- stale models and nearline
NEARLINE_CHOICES = ("The model trained once", "Nearline fold-in of each new session", "No difference")
CONTINUE_CHOICES = ("The row built once, by the nightly batch", "The row updated as people watch",
                    "Both hold the same share")


@dataclass
class FreshnessKnobs:
    rounds: int = param(8, help="Rounds of drifting tastes and new sessions (think: hours).", low=2, high=16)
    drift: float = param(0.15, help="How far tastes turn each round (0 = never).", low=0.0, high=0.6, step=0.01)
    retrain_every: int = param(4, help="The nightly tier refits every this many rounds.", low=1, high=16)
    resume_rate: float = param(0.6, help="Chance a person resumes a title they started, each round.",
                               low=0.0, high=1.0, step=0.05)
    users: int = param(200, help="People in the simulated world.", low=50, high=400)
    seed: int = param(0, help="Seed of the world, its drift and the sessions.", low=0)


def _freshness(knobs: FreshnessKnobs) -> SimulationResult:
    return simulate("stale_model", knobs)


def _tier_table(result: SimulationResult) -> pd.DataFrame:
    by_tier = result.rounds.groupby("series", sort=False)
    return by_tier[["utility_share", "continue_watching_hit"]].mean().join(
        by_tier[["fits", "fold_ins"]].sum()).reset_index().rename(columns={
            "series": "tier", "utility_share": "share of the best possible utility",
            "continue_watching_hit": "resumed titles in Continue watching", "fits": "refits",
            "fold_ins": "fold-ins"})


def nearline_updates(knobs: FreshnessKnobs, context: Context) -> LessonResult:
    result = _freshness(knobs)
    s = result.summary
    correct = _order(s["static_mean_share"], s["nearline_mean_share"])
    figures = {k: s[k] for k in ("static_first_share", "static_last_share", "static_mean_share",
                                 "nearline_mean_share", "retrain_mean_share", "retrain_fits", "nearline_fold_ins")}
    explanation = (
        f"As tastes drifted the model trained once fell from {_percent(s['static_first_share'])} to "
        f"{_percent(s['static_last_share'])} of the best possible utility (mean {_percent(s['static_mean_share'])}); "
        f"folding each person's new sessions in every round, with no refit, averaged "
        f"{_percent(s['nearline_mean_share'])} ({s['nearline_fold_ins']:,.0f} fold-ins), and nightly retraining "
        f"{_percent(s['retrain_mean_share'])} with {s['retrain_fits']:.0f} refit(s). "
        + ("Frequent small updates follow people between the expensive batch refits; that is why a service "
           "updates recommendations every few minutes." if correct == 1 else
           "Here the model trained once kept up: with little drift there is little to follow." if correct == 0
           else "Here they were within half a point: with drift this small freshness barely matters.")
    )
    return LessonResult(figures=figures, correct=correct, explanation=explanation, tables={
        "Serving tiers": _tier_table(result), "Rounds": _rounds_table(result, ["utility_share"])})


def continue_watching(knobs: FreshnessKnobs, context: Context) -> LessonResult:
    result = _freshness(knobs)
    s = result.summary
    stale, nearline = s["continue_watching_stale"], s["continue_watching_nearline"]
    figures = {"continue_watching_stale": stale, "continue_watching_nearline": nearline,
               "resume_rate": knobs.resume_rate}
    if math.isnan(stale) or math.isnan(nearline):  # no one resumed anything: neither row can hold it
        return LessonResult(figures=figures, correct=2, tables={"Serving tiers": _tier_table(result)}, explanation=(
            f"With a resume rate of {knobs.resume_rate:g} nobody came back to a title in these {knobs.rounds} "
            "rounds, so neither row had anything to hold: raise the resume rate."))
    correct = _order(stale, nearline)
    explanation = (
        f"The Continue watching row built once held {_percent(stale)} of the titles people resumed; updated "
        f"from the up-to-date log it held {_percent(nearline)}. "
        + ("People resume what they started lately, and a row built before they started it cannot show it: "
           "this row is a lookup, not a model, so keeping it fresh is cheap." if correct == 1 else
           "Here the row built once did as well: nobody resumed anything new (raise the resume rate)."
           if correct == 2 else "Here the stale row held more, which only happens by chance in a tiny world.")
    )
    return LessonResult(figures=figures, correct=correct, explanation=explanation, tables={
        "Serving tiers": _tier_table(result), "Rounds": _rounds_table(result, ["continue_watching_hit"])})


# ---------------------------------------------------------------------------- feedback loop narrowing
LOOP_CHOICES = ("It narrows: impressions pile onto fewer items", "It widens as the model learns more",
                "It stays about the same")


@dataclass
class LoopKnobs:
    rounds: int = param(10, help="Rounds of show, click, retrain.", low=2, high=30)
    k: int = param(10, help="Items shown to each person per round.", low=1, high=20)
    n_users: int = param(300, help="People in the simulated world.", low=50, high=600)
    epsilon: float = param(0.2, help="ε-greedy's chance each slot shows a random item.", low=0.0, high=1.0,
                           step=0.05)
    seed: int = param(0, help="Seed of the world and its clicks.", low=0)


def feedback_loop(knobs: LoopKnobs, context: Context) -> LessonResult:
    result = simulate("popularity_trap", knobs)
    s = result.summary
    change = s["greedy_gini_last"] - s["greedy_gini_first"]
    correct = 0 if change > 0.01 else 1 if change < -0.01 else 2
    figures = dict(s)
    explanation = (
        f"Retrained on its own clicks, the greedy system's exposure Gini went from {s['greedy_gini_first']:.2f} "
        f"to {s['greedy_gini_last']:.2f} in {knobs.rounds} rounds, and the share of the catalogue shown to "
        f"anyone from {s['greedy_coverage_first']:.2f} to {s['greedy_coverage_last']:.2f}; spending some slots "
        f"on exploration ended at a Gini of {s['epsilon_greedy_gini_last']:.2f} (ε-greedy) and "
        f"{s['thompson_gini_last']:.2f} (Thompson). "
        + ("Items never shown are never clicked, so the model sees ever more evidence for what it already "
           "shows: a news feed that keeps serving the alarming stories people clicked yesterday." if correct == 0
           else "Here the loop did not narrow in these few rounds: run more rounds.")
    )
    return LessonResult(figures=figures, correct=correct, explanation=explanation, tables={
        "Rounds": _rounds_table(result, ["exposure_gini", "coverage"])})


# ---------------------------------------------------------------------------- position bias
POSITION_CHOICES = ("Raw click-through rate", "Clicks weighted by 1 / examination (IPW)",
                    "Both agree about equally")


@dataclass
class PositionKnobs:
    rounds: int = param(10, help="Rounds of logged page views.", low=2, high=40)
    page_views_per_round: int = param(3000, help="Page views logged per round.", low=500, high=10_000, step=500)
    row_decay: float = param(0.7, help="Examination kept per row further down the page.", low=0.1, high=1.0,
                             step=0.05)
    randomisation: float = param(0.3, help="Noise in the logging ranking (0 = always the same order).",
                                 low=0.0, high=3.0, step=0.1)
    seed: int = param(0, help="Seed of the world and its page views.", low=0)


def position_bias(knobs: PositionKnobs, context: Context) -> LessonResult:
    result = simulate("position_bias", knobs)
    s = result.summary
    # Kendall's tau moves by a few hundredths between seeds: "equal" within two of them
    naive, ipw = s["tau_naive"], s["tau_ipw"]
    correct = 2 if abs(naive - ipw) <= 0.02 else (1 if ipw > naive else 0)
    figures = {"tau_naive": naive, "tau_ipw": ipw, "tau_ipw_estimated": s["tau_ipw_estimated"],
               "page_views": s["page_views"]}
    explanation = (
        f"After {s['page_views']:,.0f} page views, ranking items by raw click-through agreed with their true "
        f"quality at Kendall τ = {naive:.2f}; weighting each click by 1 / examination of its tile gave "
        f"{ipw:.2f} (and {s['tau_ipw_estimated']:.2f} with examination learned from randomised swaps). "
        + ("Raw clicks reward the top-left tiles, where the logging ranking put the already popular items; "
           "dividing by how often a tile is looked at removes that head start." if correct == 1 else
           "Here both agreed alike: with row decay near 1 every tile is looked at the same." if correct == 2
           else "Here raw CTR did better, which happens when too few page views make the weights noisy.")
    )
    return LessonResult(figures=figures, correct=correct, explanation=explanation, tables={
        "Item ranking": result.tables["Item ranking"], "Rounds": _rounds_table(result, ["kendall_tau"])})


def _lesson(key: str, chapter: str, title: str, framing: str, question: str, choices: tuple[str, ...],
            knobs: type, compute: Callable, preset: str) -> Lesson:
    # the Simulate page holds the same experiment with every knob: the setup opens it on this preset
    SIMULATION_OF[key] = preset
    return Lesson(key=key, chapter=chapter, title=title, framing=framing, question=question, choices=choices,
                  Knobs=knobs, compute=compute, setup=Setup(page="simulate"))


# lesson key -> the Simulate preset it runs (the page opens that preset when the lesson is set up)
SIMULATION_OF: dict[str, str] = {}


LESSONS = [
    _lesson("offline_up_clicks_flat", ONLINE, "Offline NDCG up, clicks flat",
            "A team ships the model that won the offline test, and clicks do not move. The offline test was "
            "computed on clicks the old production system produced: people could only click what it showed. "
            "A simulated world knows what people truly like, so both views can be measured.",
            "Of two models judged on the production log, which one do people truly click more?",
            OFFLINE_CHOICES, OfflineKnobs, offline_vs_online, "offline_vs_online"),
    _lesson("ab_vs_bandit", ONLINE, "A/B test or bandit?",
            "An A/B test splits traffic evenly until it has its planned sample; a bandit shifts traffic to the "
            "version that is doing better as it learns. Both find the better version; they pay differently.",
            "While the experiment runs, which loses fewer clicks to the weaker version?",
            BANDIT_CHOICES, BanditKnobs, ab_vs_bandit, "bandit_vs_ab"),
    _lesson("peeking", ONLINE, "Peeking at an A/B test",
            "Checking the dashboard every morning and stopping as soon as the result is significant feels "
            "efficient. Here both versions are identical, so every declared winner is a false positive.",
            "With two identical versions, how often does a test that stops at the first p < alpha declare a "
            "winner?", PEEKING_CHOICES, PeekingKnobs, peeking, "bandit_vs_ab"),
    _lesson("position_bias", ONLINE, "Position bias in the click log",
            "Tiles at the top left of a homepage are looked at far more than those below, so they get more "
            "clicks whatever they show. A click log mixes how good an item is with where it was placed.",
            "Which ranking of the items agrees better with their true quality?",
            POSITION_CHOICES, PositionKnobs, position_bias, "position_bias"),
    _lesson("nearline_updates", DEPLOYMENT, "Why update every few minutes?",
            "Tastes drift within a day: what someone wants tonight follows what they watched this afternoon. A "
            "full retrain is expensive, so it runs nightly; folding each new session into the existing model "
            "(no retrain) is cheap enough to run every few minutes.",
            "As tastes drift, which serves recommendations closer to the best possible?",
            NEARLINE_CHOICES, FreshnessKnobs, nearline_updates, "stale_model"),
    _lesson("continue_watching", DEPLOYMENT, "The Continue watching row",
            "People come back to finish what they started, mostly what they started lately. The row that "
            "offers it can be built with the nightly batch or updated as they watch.",
            "Which Continue watching row holds more of the titles people actually resume?",
            CONTINUE_CHOICES, FreshnessKnobs, continue_watching, "stale_model"),
    _lesson("feedback_loop", LOOPS, "The feedback loop (news anxiety)",
            "A news app learns from clicks on the stories it chose to show, then shows more of what was "
            "clicked. People who only see alarming stories click alarming stories. Watch what everyone sees.",
            "Retrained every round on its own clicks, what happens to the variety of what people are shown?",
            LOOP_CHOICES, LoopKnobs, feedback_loop, "popularity_trap"),
]

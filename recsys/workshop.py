"""Workshop mode: a preset file that sets a hosted instance up for a room, and its preparation.

A preset (``workshop.toml``) names the dataset and split the app opens on, the models the
instructor wants ready, which lessons and pages the room sees, and whether visitors may upload.
:func:`prepare` trains every run the preset needs into the shared experiment store ahead of
time: the preset's models, each lesson's setup runs, and each lesson run once with its default
knobs (the runs its experiment trains). Every run goes through the experiment's one run path
with the shared owner, so the page finds each one stored and a room of learners opening any
lesson trains nothing. ``python -m recsys workshop prepare workshop.toml`` runs it from a shell.

Format (every key optional except where noted)::

    name = "Recommender systems course"
    dataset = "sample"            # "sample", or a MovieLens folder/.zip or table, relative to this file
    uploads = false               # may visitors upload their own files
    pages = ["data", "train", "compare", "lessons"]   # page names (the URL paths); absent = every page
    lessons = "all"               # or a list of lesson keys, in the order the room takes them

    [split]                       # the sidebar's split (recsys.data.split.SplitConfig fields)
    method = "random"
    test_fraction = 0.2
    seed = 42

    [[models]]                    # trained on dataset and split; params default to the model's
    model = "item_knn"
    params = { k = 50 }
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from recsys.data.errors import DataError

# the app's pages by URL path, in the order the navigation lists them
PAGES = ("data", "train", "compare", "runs", "embeddings", "attention", "graph", "homepage", "serving",
         "simulate", "lessons")
KEYS = {"name", "dataset", "uploads", "pages", "lessons", "split", "models"}
ENV_VAR = "RECSYS_WORKSHOP"
FLAG = "--workshop"


@dataclasses.dataclass(frozen=True)
class Workshop:
    """A parsed, checked preset. ``lessons`` holds keys in course order (every lesson for "all")."""

    name: str
    dataset: str
    split: dict
    models: tuple[tuple[str, dict], ...]
    lessons: tuple[str, ...]
    pages: tuple[str, ...]
    uploads: bool
    path: Path | None = None

    def split_config(self):
        from recsys.data.split import SplitConfig

        return SplitConfig.coerce(self.split)


def parse(values: Mapping, *, path: Path | None = None) -> Workshop:
    """A :class:`Workshop` from a preset's table; DataError names the wrong entry and how to fix it."""
    from recsys.data.split import SplitConfig
    from recsys.experiment import normalise_params
    from recsys.lessons.base import lessons

    where = f"The workshop preset {path.name}" if path is not None else "The workshop preset"
    unknown = sorted(set(values) - KEYS)
    if unknown:
        raise DataError(f"{where} has unknown key(s) {unknown}; it takes {sorted(KEYS)}.")
    dataset = str(values.get("dataset", "sample")).strip() or "sample"
    if dataset.lower() != "sample" and path is not None and not Path(dataset).expanduser().is_absolute():
        dataset = str((path.parent / dataset).resolve())  # a relative dataset is beside the preset
    split = dict(values.get("split", {}))
    SplitConfig.coerce(split)  # checks the method and the types
    models = []
    for position, entry in enumerate(values.get("models", []), start=1):
        if not isinstance(entry, Mapping) or "model" not in entry:
            raise DataError(f"{where}: models entry {position} needs a 'model' key, e.g. model = \"item_knn\".")
        params = dict(entry.get("params", {}))
        normalise_params(str(entry["model"]), params)  # an unknown model or parameter is named here
        models.append((str(entry["model"]), params))
    available = lessons()
    chosen = values.get("lessons", "all")
    keys = tuple(available) if chosen == "all" else tuple(str(k) for k in chosen)
    missing = [k for k in keys if k not in available]
    if missing:
        raise DataError(f"{where} names unknown lesson(s) {missing}; the lessons are {list(available)}.")
    pages = tuple(str(p) for p in values.get("pages", PAGES))
    wrong = [p for p in pages if p not in PAGES]
    if wrong:
        raise DataError(f"{where} names unknown page(s) {wrong}; the pages are {list(PAGES)}.")
    if keys and "lessons" not in pages:
        pages = (*pages, "lessons")  # lessons chosen for the room are reachable
    return Workshop(name=str(values.get("name", "Workshop")), dataset=dataset, split=split, models=tuple(models),
                    lessons=keys, pages=pages, uploads=bool(values.get("uploads", True)), path=path)


def load(path: str | Path) -> Workshop:
    """Read and check the preset at ``path``."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"There is no workshop preset at {path.name!r}; give the path of a .toml file such as "
                        "workshop.toml.")
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10 has no TOML reader of its own
        raise DataError("Reading a workshop preset needs Python 3.11 or newer (its tomllib module); "
                        "run the app with Python 3.11+.") from None
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"The workshop preset {path.name} is not valid TOML: {exc}.") from None
    return parse(values, path=path.resolve())


def named(argv: list[str], environ: Mapping[str, str]) -> str | None:
    """The preset path given as ``--workshop PATH`` (after ``streamlit run app.py --``), else RECSYS_WORKSHOP."""
    for position, arg in enumerate(argv):
        if arg == FLAG and position + 1 < len(argv):
            return argv[position + 1]
        if arg.startswith(FLAG + "="):
            return arg.split("=", 1)[1]
    return (environ.get(ENV_VAR) or "").strip() or None


# ---------------------------------------------------------------------------- preparation
@dataclasses.dataclass
class Prepared:
    """What :func:`prepare` did: run ids it trained, model and setup runs it found stored, seconds per
    lesson, and the lessons that failed with their messages."""

    trained: list[str] = dataclasses.field(default_factory=list)
    reused: int = 0
    lesson_seconds: dict[str, float] = dataclasses.field(default_factory=dict)
    failed: dict[str, str] = dataclasses.field(default_factory=dict)


def source_of(dataset: str, name: str) -> dict:
    """The store's descriptor of a preset's dataset (the sample, or a file on this server: shared runs)."""
    if dataset.lower() == "sample":
        return {"kind": "sample", "label": name}
    return {"kind": "path", "path": str(Path(dataset).expanduser().resolve()), "label": name}


def prepare(workshop: Workshop, store, *, report: Callable[[str], None] = lambda text: None) -> Prepared:
    """Train every run ``workshop`` needs into ``store`` (shared owner); what is stored already is reused.

    The preset's models on its dataset and split, then per lesson its setup runs and one run of the
    lesson with its default knobs on its setup's dataset (the data the page hands it once set up).
    A lesson that fails is recorded with its message and the others still run.
    """
    from recsys.data import load as load_data
    from recsys.experiment import failure_text
    from recsys.lessons.base import Context, get

    datasets: dict[str, object] = {}

    def data(name: str):
        if name not in datasets:
            datasets[name] = load_data(name)
            store.register_dataset(datasets[name], source_of(name, datasets[name].name))
        return datasets[name]

    done = Prepared()
    context = Context(store=store)

    def train(ds, split, model: str, params: dict) -> None:
        before = len(context.fits)
        context.train(ds, split, model, params)
        done.reused += len(context.fits) == before

    for model, params in workshop.models:
        report(f"model {model} {params or ''}".rstrip())
        train(data(workshop.dataset), workshop.split, model, params)
    for key in workshop.lessons:
        lesson = get(key)
        started = time.perf_counter()
        try:
            ds = data(lesson.setup.dataset)
            for model, params in lesson.setup.runs:
                train(ds, lesson.setup.split, model, params)
            lesson.run(Context(dataset=ds, store=store, fits=context.fits))
        except Exception as exc:  # one broken lesson must not leave the room's other lessons untrained
            done.failed[key] = failure_text(exc)
        done.lesson_seconds[key] = time.perf_counter() - started
        report(f"lesson {key}: {done.lesson_seconds[key]:.1f} s" + (" FAILED" if key in done.failed else ""))
    done.trained = list(dict.fromkeys(context.fits))
    return done

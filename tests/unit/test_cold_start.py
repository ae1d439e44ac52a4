"""The first screen does not wait for torch, faiss or scipy.stats.

Importing torch alone took several seconds on a cold server, and the app used to import every
model family (hence torch) before drawing its sidebar. These checks run in a fresh interpreter
(this test process has torch loaded already by conftest) and look at ``sys.modules``: what a
page imports is a property of the code, so it is asserted directly rather than timed.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "faiss", "scipy.stats", "vl_convert")


def _fresh(code: str, tmp_path: Path) -> dict:
    """Run ``code`` in a new interpreter at the project root; it prints one JSON object last."""
    env_code = "import os\nos.environ['RECSYS_HOME'] = " + repr(str(tmp_path / "home")) + "\n"
    result = subprocess.run([sys.executable, "-c", env_code + textwrap.dedent(code)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _top_level_imports(path: Path) -> list[str]:
    names = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module != "__future__":
            names.append(node.module)
            # "from ui import charts": charts is a module, and its import is what counts
            names += [f"{node.module}.{alias.name}" for alias in node.names
                      if (ROOT / node.module.replace(".", "/") / f"{alias.name}.py").exists()]
    return names


def _app_backend() -> list[str]:
    for node in ast.parse((ROOT / "app.py").read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "BACKEND" for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise AssertionError("app.py no longer names its BACKEND modules")


def test_the_data_page_and_the_app_shell_import_no_torch_faiss_or_scipy_stats(tmp_path):
    modules = sorted(set(_top_level_imports(ROOT / "app.py") + _app_backend()
                         + _top_level_imports(ROOT / "app_pages" / "data.py")))
    assert "ui.data" in modules and "recsys.store" in modules  # the parse found the real imports
    loaded = _fresh(f"""
        import importlib, json, sys
        for name in {modules!r}:
            importlib.import_module(name)
        print(json.dumps({{name: name in sys.modules for name in {HEAVY!r}}}))
    """, tmp_path)
    assert loaded == dict.fromkeys(HEAVY, False)


def test_the_whole_first_screen_runs_without_torch_or_faiss(tmp_path):
    """The app as a visitor first opens it (sidebar + Data page), run end to end by AppTest."""
    outcome = _fresh("""
        import json, sys
        from streamlit.testing.v1 import AppTest
        at = AppTest.from_file(os.path.abspath("app.py"), default_timeout=120).run()
        print(json.dumps({"errors": [e.value for e in at.exception], "title": [t.value for t in at.title],
                          "sidebar": [h.value for h in at.sidebar.header],
                          "torch": "torch" in sys.modules, "faiss": "faiss" in sys.modules}))
    """, tmp_path)
    assert outcome == {"errors": [], "title": ["Data"], "sidebar": ["Data & split"], "torch": False, "faiss": False}


def test_the_registry_lists_models_without_importing_them_and_imports_on_first_use(tmp_path):
    seen = _fresh("""
        import json, sys
        from recsys.models import create, registry
        listed = sorted(registry)
        after_listing = "torch" in sys.modules
        in_registry = "sasrec" in registry and "nonexistent" not in registry
        pop = create("pop")
        after_pop = "torch" in sys.modules
        sasrec = registry["sasrec"]
        print(json.dumps({"n": len(listed), "after_listing": after_listing, "in": in_registry,
                          "pop": type(pop).__name__, "after_pop": after_pop, "sasrec": sasrec.key,
                          "after_sasrec": "torch" in sys.modules}))
    """, tmp_path)
    from recsys.models.registry import MODULES

    assert seen == {"n": len(MODULES), "after_listing": False, "in": True, "pop": "PopularityModel", "after_pop": False,
                    "sasrec": "sasrec", "after_sasrec": True}


def test_every_registered_model_is_listed_under_the_module_that_registers_it():
    """A model registered in a module MODULES does not name would only appear once something imported it."""
    import importlib
    import pkgutil

    import recsys.models
    from recsys.models import registry
    from recsys.models.registry import MODULES

    for found in pkgutil.iter_modules(recsys.models.__path__):
        importlib.import_module(f"recsys.models.{found.name}")
    classes = dict(registry.items())
    assert set(classes) == set(MODULES)
    assert {key: cls.__module__ for key, cls in classes.items()} == MODULES
    assert all(cls.key == key for key, cls in classes.items())


def test_a_numpy_model_is_saved_and_loaded_without_torch(tmp_path):
    outcome = _fresh(f"""
        import json, sys
        import numpy as np
        from recsys.data.synthetic import make_dataset
        from recsys.models import create
        from recsys.models.persist import load_model, save_model
        ds = make_dataset(n_users=60, n_items=40, seed=3)
        model = create("item_knn").fit(ds)
        save_model(model, {str(tmp_path / "knn")!r})
        back = load_model({str(tmp_path / "knn")!r}, ds)
        users = np.arange(5)
        same = bool(np.array_equal(model.score(users), back.score(users)))
        print(json.dumps({{"same": same, "torch": "torch" in sys.modules}}))
    """, tmp_path)
    assert outcome == {"same": True, "torch": False}


def test_registry_behaves_as_a_mapping_for_stand_ins(monkeypatch):
    """Tests put stand-in classes into the registry with monkeypatch; a removed stand-in is gone."""
    from recsys.models import get, registry

    class StandIn:
        key, family = "stand_in", "baseline"

    monkeypatch.setitem(registry, "stand_in", StandIn)
    assert get("stand_in") is StandIn and "stand_in" in registry and "stand_in" in list(registry)
    monkeypatch.undo()
    assert "stand_in" not in registry
    with pytest.raises(ValueError, match="Unknown model 'stand_in'"):
        get("stand_in")

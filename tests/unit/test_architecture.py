"""recsys/ must stay free of Streamlit (DESIGN.md): checked on the source, not just at import time."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_recsys_never_imports_streamlit_or_ui():
    offenders = {}
    for path in sorted((ROOT / "recsys").rglob("*.py")):
        bad = _imported_modules(path) & {"streamlit", "ui", "app_pages"}
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert not offenders, f"recsys/ imports UI code: {offenders}"


def test_checker_detects_a_streamlit_import(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import numpy\nfrom streamlit import session_state\n")
    assert "streamlit" in _imported_modules(probe)

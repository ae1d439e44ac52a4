"""Deployment files agree with the app: hosted settings match the hosted budgets, the Docker image
runs the hosted configuration as a non-root user with a health check, and the README documents
every setting. (Building the image needs a Docker daemon; these checks read the files.)"""

from __future__ import annotations

import dataclasses
import re
import shlex
from pathlib import Path

import pytest
from PIL import Image

from recsys import hosting

tomllib = pytest.importorskip("tomllib", reason="reading the settings files needs Python 3.11's tomllib")

ROOT = Path(__file__).resolve().parents[2]
MB = 1024 * 1024


def _toml(name: str) -> dict:
    return tomllib.loads((ROOT / ".streamlit" / name).read_text())


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    lines, current = [], ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        current += " " + line[:-1] if line.endswith("\\") else " " + line
        if not line.endswith("\\"):
            lines.append(current.strip())
            current = ""
    assert not current, "the Dockerfile ends inside a continued line"
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def test_hosted_settings_guard_the_server_and_match_the_hosted_budget():
    hosted = _toml("hosted.toml")
    assert hosted["server"]["fileWatcherType"] == "none"
    assert hosted["server"]["runOnSave"] is False
    limits = hosting.HOSTED_LIMITS
    assert hosted["server"]["maxUploadSize"] * MB == max(limits.upload_bytes, limits.bundle_bytes)
    assert hosted["server"]["enableXsrfProtection"] is True
    assert hosted["client"]["showErrorDetails"] == "none"
    assert hosted["browser"]["gatherUsageStats"] is False
    local = _toml("config.toml")
    assert local["server"]["maxUploadSize"] * MB == hosting.LOCAL_LIMITS.upload_bytes
    assert local["browser"]["gatherUsageStats"] is False


def test_every_option_in_the_settings_files_is_a_streamlit_option():
    from streamlit import config

    known = config.get_config_options()
    for name in ("hosted.toml", "config.toml"):
        for section, options in _toml(name).items():
            for option in options:
                assert f"{section}.{option}" in known, f"{name}: {section}.{option} is not a Streamlit option"


def test_the_image_runs_the_hosted_app_as_a_non_root_user_with_a_health_check():
    steps = _instructions()
    kinds = [kind for kind, _ in steps]
    assert steps[0] == ("FROM", "python:3.11-slim")
    env = " ".join(args for kind, args in steps if kind == "ENV")
    assert "RECSYS_HOSTED=1" in env.split()
    # the hosted settings replace the laptop ones inside the image
    assert ("COPY", ".streamlit/hosted.toml .streamlit/config.toml") in steps
    # non-root from before the server starts
    user = [args for kind, args in steps if kind == "USER"]
    assert user and user[-1] not in ("root", "0") and kinds.index("USER") < kinds.index("CMD")
    health = next(args for kind, args in steps if kind == "HEALTHCHECK")
    assert "http://localhost:8501/_stcore/health" in health
    command = next(args for kind, args in steps if kind == "CMD")
    assert "app.py" in command and "--server.port=8501" in command and "--server.address=0.0.0.0" in command
    assert ("EXPOSE", "8501") in steps


def test_the_image_installs_the_cpu_build_of_the_pinned_torch():
    pinned = re.search(r"^torch==(\S+)$", (ROOT / "requirements.txt").read_text(), re.MULTILINE).group(1)
    installs = [args for kind, args in _instructions() if kind == "RUN" and "pip install" in args]
    torch_install = next(args for args in installs if "torch==" in args)
    words = shlex.split(torch_install)
    assert f"torch=={pinned}" in words
    assert words[words.index("--index-url") + 1] == "https://download.pytorch.org/whl/cpu"
    assert any("-r requirements.txt" in args for args in installs)


def test_the_build_context_keeps_what_the_app_needs_and_leaves_out_the_rest():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".git", "tests", ".venv"} <= ignored
    needed = {"app.py", "app_pages", "ui", "recsys", "sample_data", "assets", ".streamlit", "requirements.txt"}
    assert not needed & ignored
    for kind, args in _instructions():
        if kind == "COPY":
            *sources, _ = args.split()
            for source in sources:
                if not source.startswith("--") and source != ".":
                    assert (ROOT / source).exists(), f"COPY {source}: no such file"


def test_the_favicon_is_served_by_the_app_itself():
    source = (ROOT / "app.py").read_text()
    assert 'page_icon=":material' not in source
    with Image.open(ROOT / "assets" / "icon.png") as icon:
        assert icon.format == "PNG" and icon.size[0] == icon.size[1] >= 32


def test_the_readme_documents_every_setting_and_budget():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Hosting it for a room"):]
    for setting in ("RECSYS_HOSTED", "RECSYS_DATA_ROOTS", "RECSYS_HOME", "RECSYS_INSTRUCTORS",
                    "RECSYS_INSTRUCTOR_KEY", "RECSYS_LIMIT_"):
        assert f"`{setting}" in section, setting
    for field in dataclasses.fields(hosting.Limits):
        assert f"`{field.name.upper()}`" in section, f"README does not document RECSYS_LIMIT_{field.name.upper()}"
    for must in ("proxy_set_header Upgrade $http_upgrade", 'proxy_set_header Connection "upgrade"',
                 "proxy_set_header Host $host", "docker build", "Community Cloud"):
        assert must in section, must

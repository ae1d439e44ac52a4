"""Every hostile input of tests/hostile.py, given to the Data page the way a visitor would: tables
through the upload tab, folders and zips through the server-path box. Each must end in its own
specific message on the page (the same fragment the loader test expects), never an exception box,
and an upload that failed is not kept.

The page reads its budgets from the environment, so the test sets RECSYS_LIMIT_* to the small
test budgets the corpus is built for (bombs of a few MB instead of gigabytes).
"""

from __future__ import annotations

import dataclasses

import pytest

from recsys import hosting
from tests.hostile import TEST_LIMITS, cases, prepare
from ui.text import md_unescape

VISITOR = "hostile-visitor"
# mappings no page can make (its selectboxes offer only the file's columns and the four roles):
# the loader test covers them
API_ONLY = {"unknown column mapping", "unknown role in mapping"}
CASES = [c for c in cases() if not c.needs_non_root and c.name not in API_ONLY]
# the budgets that refusing the corpus depends on; uploads themselves may be as large as a case needs
# where the page checks before the loader does, its own message names the problem
PAGE_EXPECTS = {"no such path": "Nothing called 'ratings.csv' exists on the server"}
LIMIT_FIELDS = ("table_bytes", "archive_bytes", "compression_ratio", "rows", "columns", "id_chars", "title_chars")


def _limit_env(monkeypatch, case) -> None:
    limits = dataclasses.replace(TEST_LIMITS, **case.limits) if case.limits else TEST_LIMITS
    for name in LIMIT_FIELDS:
        monkeypatch.setenv(f"RECSYS_LIMIT_{name.upper()}", str(getattr(limits, name)))
    monkeypatch.setenv("RECSYS_LIMIT_UPLOAD_BYTES", str(64 * hosting.MB))


def _messages(at) -> list[str]:
    assert not at.exception, [e.value for e in at.exception]
    return [md_unescape(e.value) for e in at.error]


def _button(at, label: str):
    found = [b for b in at.button if b.label == label]
    return found[0] if found else None


def _upload(at, key: str, name: str, payload: bytes):
    next(f for f in at.file_uploader if f.key == key).set_value((name, payload, "application/octet-stream"))
    return at.run()


def _through_upload_tab(at, case, target) -> list[str]:
    at.run()
    if case.mode == "items":
        _upload(at, "upload_file", "log.csv", b"user,item\n1,10\n2,20\n3,10\n")
    else:
        _upload(at, "upload_file", target.name, target.read_bytes())
    shown = _messages(at)
    if shown:  # refused while reading the file
        return shown
    if case.mode == "mapped":
        for role, column in case.mapping.items():
            at.selectbox(key=f"map_{'ts' if role == 'timestamp' else role}").set_value(column or "(none)")
    if case.mode == "items":
        next(f for f in at.file_uploader if f.key == "upload_items").set_value(
            (target.name, target.read_bytes(), "text/csv"))
    _button(at, "Use this data").click().run()
    return _messages(at)


def _through_path_box(at, target) -> list[str]:
    at.run()
    at.text_input(key="ml_path").input(str(target))
    _button(at, "Load MovieLens").click().run()
    return _messages(at)


@pytest.mark.parametrize("case", [c for c in CASES if c.expect is not None], ids=lambda c: c.name)
def test_each_hostile_input_gets_its_own_message_on_the_page(app, case, tmp_path, monkeypatch):
    _limit_env(monkeypatch, case)
    monkeypatch.setattr("ui.runs.owner_token", lambda: VISITOR)
    folder = tmp_path / "input"
    folder.mkdir()
    target = prepare(case, folder)
    if case.mode == "load":
        shown = _through_path_box(app, target)
    else:
        shown = _through_upload_tab(app, case, target)
    assert len(shown) == 1, (case.name, shown)
    expect = PAGE_EXPECTS.get(case.name, case.expect)
    assert expect.lower() in shown[0].lower(), (case.name, expect, shown[0])
    assert str(tmp_path) not in shown[0]
    assert hosting.list_uploads(VISITOR) == []  # a failed upload is not kept

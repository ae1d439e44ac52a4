"""Every hostile input of tests/hostile.py is refused with its own message, cheaply, and leaks nothing."""

from __future__ import annotations

import errno
import os
import tracemalloc
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from recsys.data import loaders
from recsys.data.dataset import Dataset
from recsys.data.errors import DataError
from recsys.data.sample_matrix import matrix_sample
from recsys.hosting import LOCAL_LIMITS
from tests.hostile import TEST_LIMITS, attempt, cases, prepare, run

CASES = cases()
# Refusing a bomb may hold the file (at most table_bytes = 4 MB here) and a little more, never the
# bomb's unpacked size (50 MB to 4 GB, 10 M Parquet rows): Python-side peak while refusing each.
BOMB_PEAK_BYTES = 64 * 1024**2
MAX_MESSAGE = 600


@pytest.fixture(autouse=True)
def hosted(monkeypatch):
    monkeypatch.setenv("RECSYS_HOSTED", "1")
    monkeypatch.delenv("RECSYS_DATA_ROOTS", raising=False)


def test_the_corpus_is_large_and_each_refusal_has_its_own_message():
    assert len(CASES) >= 60
    assert len({case.name for case in CASES}) == len(CASES)
    fragments = Counter(case.expect for case in CASES if case.expect is not None)
    assert [f for f, n in fragments.items() if n > 1] == []
    assert sum(case.bomb for case in CASES) >= 12


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_input(case, tmp_path):
    if case.needs_non_root and os.geteuid() == 0:
        pytest.skip("root reads every file; the permission case is simulated in test_permission_denied_*")
    work = tmp_path / "work"
    work.mkdir()
    if case.expect is None:
        ds = attempt(case, work)
        assert isinstance(ds, Dataset)
        case.check(ds)
        return
    target = prepare(case, work)  # building a bomb is not part of refusing it
    if case.bomb:
        tracemalloc.start()
    try:
        with pytest.raises(DataError) as info:
            run(case, target)
    finally:
        if case.bomb:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
    message = str(info.value)
    assert case.expect in message, f"{case.name}: {message!r}"
    assert str(tmp_path) not in message and str(work) not in message
    assert len(message) <= MAX_MESSAGE, f"{case.name}: {len(message)} characters"
    if case.bomb:
        assert peak < BOMB_PEAK_BYTES, f"{case.name}: peak {peak / 1e6:.1f} MB"


def test_no_message_quotes_more_than_a_short_excerpt_nor_another_cases_words(tmp_path):
    """The 1 MB cells come back as at most a 40-character excerpt, whatever the case; and no
    refusal could be mistaken for another: no message holds another case's fragment."""
    fragments = {case.name: case.expect for case in CASES if case.expect is not None}
    messages = {}
    for case in CASES:
        if case.expect is None or case.needs_non_root:
            continue
        work = tmp_path / case.name.replace(" ", "_")
        work.mkdir()
        with pytest.raises(DataError) as info:
            attempt(case, work)
        message = str(info.value)
        assert "x" * 41 not in message and "z" * 41 not in message and "T" * 41 not in message, case.name
        messages[case.name] = message
    assert len(messages) >= 75 and len(set(messages.values())) == len(messages)
    for name, message in messages.items():
        others = [other for other, fragment in fragments.items() if other != name and fragment in message]
        assert others == [], f"{name}'s message holds the fragment of {others}: {message!r}"


def test_zip_budgets_are_counted_while_streaming(tmp_path):
    """Per-member sizes agree with the declared ones, yet the total is caught while unpacking."""
    case = next(c for c in CASES if c.name == "zip over the archive budget")
    work = tmp_path / "w"
    work.mkdir()
    archive = case.build(work)
    import zipfile

    with zipfile.ZipFile(archive) as zf:
        sizes = [info.file_size for info in zf.infolist()]
    assert all(size <= TEST_LIMITS.table_bytes for size in sizes)  # each member alone is fine
    assert sum(sizes) > TEST_LIMITS.archive_bytes  # together they are not
    limits = TEST_LIMITS.__class__(**{**TEST_LIMITS.__dict__, "rows": 10_000_000})
    with pytest.raises(DataError, match=r"more than 8 MB in all \(reading total.zip/ml/tags.csv\)"):
        loaders.load(archive, limits=limits)


def test_limits_come_from_the_environment_at_call_time(tmp_path, monkeypatch):
    path = tmp_path / "rows.csv"
    path.write_bytes(b"user,item\n" + b"1,2\n2,1\n" * 30)
    assert len(loaders.read_table(path)) == 60
    monkeypatch.setenv("RECSYS_LIMIT_ROWS", "50")
    with pytest.raises(DataError, match="has 61 lines; the limit is 50 rows"):
        loaders.read_table(path)
    monkeypatch.setenv("RECSYS_LIMIT_ROWS", "100")
    monkeypatch.setenv("RECSYS_LIMIT_ID_CHARS", "3")
    path.write_bytes(b"user,item\nabcd,2\nab,1\n")
    with pytest.raises(DataError, match="has a 4-character value in row 1"):
        loaders.load(path)


def test_permission_denied_on_a_folder_names_no_path(tmp_path, monkeypatch):
    folder = tmp_path / "secret"
    folder.mkdir()
    (folder / "u.data").write_text("1\t1\t5\t1\n2\t2\t4\t1\n")

    def refuse(path):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(loaders.os, "scandir", refuse)
    with pytest.raises(DataError) as info:
        loaders.load(folder)
    assert str(info.value).startswith("The folder secret cannot be read (permission denied).")
    assert str(tmp_path) not in str(info.value)


def test_permission_denied_on_a_file_names_no_path(tmp_path, monkeypatch):
    path = tmp_path / "private.csv"
    path.write_text("user,item\n1,2\n2,1\n")
    real_open = type(path).open

    def refuse(self, *args, **kwargs):
        if self.name == "private.csv":
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(type(path), "open", refuse)
    for call in (lambda: loaders.read_table(path), lambda: loaders.load(path)):
        with pytest.raises(DataError) as info:
            call()
        assert str(info.value).startswith("private.csv cannot be read (permission denied).")
        assert str(tmp_path) not in str(info.value)


def test_sparsity_picture_of_a_1mb_id_stays_small():
    """Labels are short object strings: a 1 MB id no longer sizes every cell of a numpy array."""
    users = [f"u{i}" for i in range(30)]
    users[0] = "x" * 1_048_576
    frame = pd.DataFrame({"user": users * 5, "item": np.repeat(np.arange(5), 30), "rating": 1.0})
    ds = Dataset.from_frame(frame, limits=LOCAL_LIMITS.__class__(**{**LOCAL_LIMITS.__dict__, "id_chars": 2 * 1024**2}))
    tracemalloc.start()
    picture = matrix_sample(ds, n_users=120, n_items=300)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(picture) == 150
    assert picture["user"].str.len().max() == 60  # cut to LABEL_CHARS, ending in an ellipsis
    assert picture["user"].map(len).sum() < 150 * 60
    # before: 150 cells x 1,048,576 characters x 4 bytes = 629 MB of fixed-width unicode
    assert peak < 16 * 1024**2, f"peak {peak / 1e6:.1f} MB"

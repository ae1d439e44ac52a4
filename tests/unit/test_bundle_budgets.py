"""Bundle import under budgets: every crafted bundle is refused with its own message, before it is unpacked."""

from __future__ import annotations

import dataclasses
import io
import json
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest

from recsys.data import load
from recsys.hosting import HOSTED_LIMITS, MB
from recsys.store import ExperimentStore, StoreError, train_or_reuse

SOURCE = {"kind": "sample", "label": "Sample catalogue (synthetic)"}
SPLIT = {"method": "random", "test_fraction": 0.2, "n": 1, "seed": 42, "positives": "all", "threshold": 4.0}
LIMITS = HOSTED_LIMITS  # a hosted server's budgets: 100 MB sent, 400 MB unpacked, 100-fold, 2,000 files


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A real bundle of two runs (one with its model) and the id of the one with the model."""
    sample = load("sample")
    source = ExperimentStore(tmp_path_factory.mktemp("source"))
    pop = train_or_reuse(source, sample, SOURCE, SPLIT, "pop", load=False).record
    knn = train_or_reuse(source, sample, SOURCE, SPLIT, "item_knn", load=False).record
    return source.export_bundle([pop.run_id, knn.run_id], include_models=True), pop.run_id, knn.run_id


@pytest.fixture
def target(tmp_path):
    return ExperimentStore(tmp_path / "target")


def members_of(payload: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(payload)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def rezip(members: dict[str, bytes], method=zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are what one test wants
        for name, data in (members.items() if isinstance(members, dict) else members):
            zf.writestr(name, data)
    return out.getvalue()


def with_bomb(payload: bytes, name: str, size: int) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for member, data in members_of(payload).items():
            if member != name:
                zf.writestr(member, data)
        info = zipfile.ZipInfo(name)
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w") as member:  # written in chunks: the test never holds it whole
            for _ in range(size // MB):
                member.write(bytes(MB))
    return out.getvalue()


def declare_size(payload: bytes, name: str, size: int) -> bytes:
    """The zip with ``name``'s uncompressed size rewritten in its central and local headers."""
    data = bytearray(payload)
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        name_length = int.from_bytes(data[at + 28:at + 30], "little")
        if data[at + 46:at + 46 + name_length] == name.encode():
            data[at + 24:at + 28] = size.to_bytes(4, "little")
            local = int.from_bytes(data[at + 42:at + 46], "little")
            data[local + 22:local + 26] = size.to_bytes(4, "little")
            return bytes(data)
        at = data.find(b"PK\x01\x02", at + 46 + name_length)
    raise AssertionError(f"{name} not in the zip")


def refused(target: ExperimentStore, payload: bytes, limits=LIMITS) -> str:
    """The StoreError's message; the store holds nothing afterwards."""
    with pytest.raises(StoreError) as raised:
        target.import_bundle(payload, owner="visitor", limits=limits)
    assert target.list() == [] and not any(target.artifacts.iterdir()) and not any(target.tmp.iterdir())
    return str(raised.value)


def edit_manifest(payload: bytes, edit) -> bytes:
    members = members_of(payload)
    manifest = json.loads(members["manifest.json"])
    edit(manifest)
    members["manifest.json"] = json.dumps(manifest).encode()
    return rezip(members)


def test_a_real_bundle_imports_under_hosted_budgets(exported, target):
    payload, pop, knn = exported
    assert len(payload) < LIMITS.bundle_bytes
    assert target.import_bundle(payload, owner="visitor", limits=LIMITS) == {"imported": [pop, knn], "skipped": []}
    assert {r.run_id: r.has_model for r in target.list(owner="visitor")} == {pop: True, knn: True}
    assert not any(target.tmp.iterdir())
    # exactly at the budgets still imports (the arrays inside the npz files are stored, not compressed,
    # so they take nothing beyond the files); one byte less refuses it
    unpacked = sum(len(data) for data in members_of(payload).values())
    assert len(payload) < unpacked < 3 * len(payload)
    exact = dataclasses.replace(LIMITS, bundle_bytes=len(payload), bundle_unpacked_bytes=unpacked)
    assert ExperimentStore(target.root.parent / "exact").import_bundle(payload, owner="v", limits=exact)["imported"] \
        == [pop, knn]
    less = dataclasses.replace(exact, bundle_unpacked_bytes=unpacked - 1)
    assert refused(ExperimentStore(target.root.parent / "less"), payload, less).startswith(
        f"The bundle would unpack to {unpacked / MB:.1f} MB, over the {(unpacked - 1) / MB:.1f} MB this server unpacks.")


def test_a_payload_over_the_bundle_budget_is_refused_unread(exported, target):
    payload, _, _ = exported
    limits = dataclasses.replace(LIMITS, bundle_bytes=1 * MB)
    tracemalloc.start()
    try:
        message = refused(target, payload, limits)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert message == (f"The bundle is {len(payload) / MB:.1f} MB; this server imports bundles of up to 1.0 MB. "
                       "Export fewer runs, or export them without their models.")
    assert peak < 256 * 1024, peak


def test_a_zip_bomb_member_is_refused_before_it_is_unpacked(exported, target):
    payload, pop, _ = exported
    bomb = with_bomb(payload, f"runs/{pop}/report.npz", 300 * MB)
    assert len(bomb) < len(payload) + 1 * MB  # 300 MB of zeros deflate about 1000-fold
    tracemalloc.start()
    try:
        message = refused(target, bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert message.startswith(f"'runs/{pop}/report.npz' in the bundle would inflate ")
    assert "more than the 100-fold this server allows: a zip bomb" in message
    assert "KB to 300.0 MB" in message
    assert peak < 2 * MB, peak


def test_a_member_over_the_unpacked_budget_is_refused(exported, target):
    payload, pop, _ = exported
    limits = dataclasses.replace(LIMITS, bundle_unpacked_bytes=5 * MB, compression_ratio=10_000.0)
    message = refused(target, with_bomb(payload, f"runs/{pop}/report.npz", 6 * MB), limits)
    assert message == (f"'runs/{pop}/report.npz' in the bundle would unpack to 6.0 MB, over the 5.0 MB this "
                       "server unpacks. Export fewer runs, or without their models.")
    # members each within the budget, together over it
    total = sum(len(d) for d in members_of(payload).values())
    limits = dataclasses.replace(LIMITS, bundle_unpacked_bytes=total // 2)
    assert max(len(d) for d in members_of(payload).values()) < total // 2
    assert refused(target, payload, limits) == (f"The bundle would unpack to {total / MB:.1f} MB, over the "
                                                f"{total // 2 / MB:.1f} MB this server unpacks. Export fewer runs, "
                                                "or without their models.")


def test_a_member_lying_about_its_size_is_refused_while_streaming(exported, target):
    """The directory says 1,000 bytes; the data inflates to 50 MB. Unpacking stops at the declared
    size and the checksum gives it away; memory stays small throughout."""
    payload, pop, _ = exported
    name = f"runs/{pop}/report.json"
    lying = declare_size(with_bomb(payload, name, 50 * MB), name, 1000)
    with zipfile.ZipFile(io.BytesIO(lying)) as zf:
        assert zf.getinfo(name).file_size == 1000
    tracemalloc.start()
    try:
        message = refused(target, lying)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert message.startswith(f"'{name}' in the bundle is damaged: its contents do not match its declared size or "
                              "checksum (Bad CRC-32")
    assert peak < 8 * MB, peak


def test_a_huge_manifest_is_refused_unread(exported, target):
    payload, _, _ = exported
    members = members_of(payload)
    members["manifest.json"] = members["manifest.json"] + b" " * (17 * MB)
    crafted = rezip(members, zipfile.ZIP_STORED)
    del members
    tracemalloc.start()
    try:
        message = refused(target, crafted)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert message.startswith("The bundle's manifest.json is 17.0 MB; a manifest is at most 16.0 MB")
    assert peak < 2 * MB, peak


def test_a_zip_of_a_hundred_thousand_members_is_refused_before_its_directory_is_read(target):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for index in range(100_000):
            zf.writestr(f"f{index}", b"")
    payload = out.getvalue()
    tracemalloc.start()
    try:
        message = refused(target, payload)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert message == ("The zip holds 100,000 files; an experiment bundle holds at most 2,000 (five per run), so "
                       "this is not one. Nothing was imported.")
    assert peak < 1 * MB, peak
    # a count under 65,536 (no zip64 record) is read from the plain end record
    small = rezip({f"f{i}": b"" for i in range(2_001)})
    assert refused(target, small).startswith("The zip holds 2,001 files")


@pytest.mark.parametrize("name", ["../evil.py", "runs/../../etc/cron.d/x", "/etc/passwd", "C:/Windows/x",
                                  "runs\\..\\x"])
def test_members_with_unsafe_paths_are_refused(exported, target, name):
    payload, _, _ = exported
    members = members_of(payload)
    members[name] = b"x"
    message = refused(target, rezip(members))
    assert message.startswith(f"The bundle holds a file with an unsafe path, {name!r}")


def test_unexpected_duplicate_and_oddly_packed_members_are_refused(exported, target):
    payload, pop, _ = exported
    members = members_of(payload)
    assert refused(target, rezip({**members, f"runs/{pop}/evil.py": b"import os"})).startswith(
        f"The bundle holds 'runs/{pop}/evil.py', which is not part of an experiment bundle")
    twice = list(members.items()) + [("manifest.json", members["manifest.json"])]
    assert refused(target, rezip(twice)) == ("The bundle holds 'manifest.json' twice; it is damaged or crafted. "
                                             "Export it again.")
    assert refused(target, rezip(members, zipfile.ZIP_BZIP2)).endswith(
        "in the bundle is compressed with a method bundles do not use (zip method 12); export the bundle again.")
    # folder entries a zip tool adds are fine
    with_folders = rezip({"runs/": b"", f"runs/{pop}/": b"", **members})
    assert ExperimentStore(target.root.parent / "folders").import_bundle(
        with_folders, owner="v", limits=LIMITS)["imported"] == [pop, exported[2]]


@pytest.mark.parametrize("edit, message", [
    (lambda m: m["runs"][0].update(seed="7"), "A run in the bundle lacks 'seed' or has the wrong type for it "
                                              "(expected int)"),
    (lambda m: m["runs"][0].update(seed=True), "lacks 'seed' or has the wrong type for it (expected int)"),
    (lambda m: m["runs"][0].update(created_at="yesterday"), "lacks 'created_at' or has the wrong type for it "
                                                            "(expected a number)"),
    (lambda m: m["runs"][0].update(params=[1, 2]), "lacks 'params' or has the wrong type for it (expected dict)"),
    (lambda m: m.update(runs={"a": 1}), "The bundle's manifest has no list of runs."),
    (lambda m: m["runs"].append(m["runs"][0]), "The bundle's manifest names the same run twice"),
    (lambda m: m["runs"].__setitem__(0, "run"), "A run in the bundle's manifest is not an object"),
])
def test_manifest_fields_of_the_wrong_type_are_refused(exported, target, edit, message):
    payload, _, _ = exported
    assert message in refused(target, edit_manifest(payload, edit))


def test_a_manifest_that_is_not_an_object_or_not_json_is_refused(exported, target):
    payload, _, _ = exported
    members = members_of(payload)
    assert "wrong 'format'" in refused(target, rezip({**members, "manifest.json": b"[1, 2, 3]"}))
    assert "not readable JSON" in refused(target, rezip({**members, "manifest.json": b"{" * 100_000}))


def _npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_an_npz_with_object_arrays_is_refused_without_unpickling(exported, target):
    payload, pop, _ = exported
    members = members_of(payload)
    members[f"runs/{pop}/report.npz"] = _npz(ndcg=np.array([{"evil": 1}, None], dtype=object))
    assert refused(target, rezip(members)) == (
        f"report.npz of run {pop} holds Python objects ('ndcg' is an object array), which this program never "
        "loads: they would be unpickled. Nothing was imported.")
    members = members_of(payload)
    members[f"runs/{pop}/arrays.npz"] = _npz(weights=np.array(["a", 1], dtype=object))
    assert "arrays.npz of run" in refused(target, rezip(members))


def test_an_npz_bomb_inside_a_member_is_refused(exported, target):
    payload, pop, _ = exported
    inner = io.BytesIO()
    np.savez_compressed(inner, ndcg=np.zeros(8 * MB // 4, dtype=np.float32))
    members = members_of(payload)
    members[f"runs/{pop}/report.npz"] = inner.getvalue()
    message = refused(target, rezip(members, zipfile.ZIP_STORED))
    assert message.startswith(f"report.npz of run {pop} would inflate ")
    assert message.endswith("inside; more than the 100-fold this server allows: a zip bomb, not a stored run. "
                            "Nothing was imported.")
    # an array header declaring far more data than the file holds
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10**9,)})
    members[f"runs/{pop}/report.npz"] = rezip({"ndcg.npy": header.getvalue() + bytes(8)})
    assert refused(target, rezip(members)) == (
        f"report.npz of run {pop} declares an array ('ndcg', shape (1000000000,)) larger than the data it holds; "
        "the file is damaged or crafted.")


def test_a_torch_models_bundle_passes_the_inner_checks_and_scores_the_same(tmp_path):
    """modules.pt is a zip too (torch's format): its members go through the same inner checks."""
    from recsys.store import split_dataset

    sample = load("sample")
    source = ExperimentStore(tmp_path / "source")
    record = train_or_reuse(source, sample, SOURCE, SPLIT, "ncf_gmf", {"epochs": 1}, load=False).record
    assert (source.artifacts / record.run_id / "modules.pt").is_file()
    payload = source.export_bundle([record.run_id], include_models=True)
    with zipfile.ZipFile(io.BytesIO(payload)) as zf:
        assert f"runs/{record.run_id}/modules.pt" in zf.namelist()
    target = ExperimentStore(tmp_path / "target")
    assert target.import_bundle(payload, owner="v", limits=LIMITS) == {"imported": [record.run_id], "skipped": []}
    train = split_dataset(sample, SPLIT).train
    users = np.arange(40)
    np.testing.assert_array_equal(target.load_model(record.run_id, train).score(users),
                                  source.load_model(record.run_id, train).score(users))

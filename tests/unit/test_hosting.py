"""Hosted mode: server paths confined to the data roots, messages without absolute paths, upload quotas."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from recsys import hosting
from recsys.data.errors import DataError
from recsys.hosting import KB, MB


@pytest.fixture
def layout(tmp_path):
    """A data root with one dataset folder and one zip, a secret folder beside it, the app's home."""
    root = tmp_path / "srv" / "datasets"
    (root / "ml-100k").mkdir(parents=True)
    (root / "ml-100k" / "u.data").write_text("1\t1\t5\t1\n")
    (root / "ml-latest-small.zip").write_bytes(b"PK")
    (root / ".hidden").mkdir()
    secret = tmp_path / "srv" / "secret"
    secret.mkdir()
    (secret / "passwords.txt").write_text("root:hunter2\n")
    home = tmp_path / "home"
    return {"root": root, "secret": secret, "home": home, "tmp": tmp_path}


def hosted(layout, *roots, **limits) -> hosting.HostConfig:
    env = {"RECSYS_HOSTED": "1", "RECSYS_HOME": str(layout["home"]),
           "RECSYS_DATA_ROOTS": os.pathsep.join(str(r) for r in (roots or (layout["root"],)))}
    env.update({f"RECSYS_LIMIT_{name.upper()}": str(value) for name, value in limits.items()})
    return hosting.config(env)


def refusal(text: str, cfg: hosting.HostConfig) -> str:
    with pytest.raises(DataError) as raised:
        hosting.resolve_server_path(text, cfg)
    message = str(raised.value)
    assert "/srv" not in message and str(cfg.home()) not in message and "hunter2" not in message, message
    return message


# ---------------------------------------------------------------------- configuration
def test_config_reads_the_environment(layout):
    cfg = hosted(layout, upload_bytes=1234)
    assert cfg.hosted and cfg.data_roots == (layout["root"].resolve(),)
    assert cfg.limits.upload_bytes == 1234 and cfg.limits.rows == hosting.HOSTED_LIMITS.rows
    assert cfg.uploads() == layout["home"].resolve() / "uploads"
    local = hosting.config({"RECSYS_HOME": str(layout["home"])})
    assert not local.hosted and local.limits == hosting.LOCAL_LIMITS


def test_a_root_inside_the_app_home_is_never_a_data_root(layout):
    uploads = layout["home"] / "uploads"
    uploads.mkdir(parents=True)
    cfg = hosted(layout, layout["root"], uploads, layout["home"])
    assert cfg.data_roots == (layout["root"].resolve(),)


# ---------------------------------------------------------------------- server paths, hosted
def test_relative_names_resolve_under_the_roots(layout):
    cfg = hosted(layout)
    root = layout["root"].resolve()
    assert hosting.resolve_server_path("ml-100k", cfg) == root / "ml-100k"
    # the way display_path and available_data name it, with the root's name first
    assert hosting.resolve_server_path("datasets/ml-100k", cfg) == root / "ml-100k"
    assert hosting.resolve_server_path(str(root / "ml-latest-small.zip"), cfg) == root / "ml-latest-small.zip"
    assert hosting.resolve_server_path("ml-100k/../ml-100k/u.data", cfg) == root / "ml-100k" / "u.data"
    assert hosting.available_data(cfg) == ["datasets/ml-100k", "datasets/ml-latest-small.zip"]
    assert hosting.display_path(root / "ml-100k" / "u.data", cfg) == "datasets/ml-100k/u.data"
    assert hosting.display_path(root, cfg) == "datasets"


@pytest.mark.parametrize("text", ["/etc/passwd", "/etc", "/", "../secret", "../secret/passwords.txt",
                                  "../../../../../../etc/passwd", "ml-100k/../../secret",
                                  "datasets/../secret/passwords.txt"])
def test_paths_outside_the_roots_are_refused_alike(layout, text):
    cfg = hosted(layout)
    message = refusal(text, cfg)
    assert message.startswith("That path is outside the data folders this server offers.")
    assert "Pick one of: datasets/ml-100k, datasets/ml-latest-small.zip" in message


def test_existence_outside_the_roots_is_not_revealed(layout):
    cfg = hosted(layout)
    existing = refusal(str(layout["secret"] / "passwords.txt"), cfg)
    missing = refusal(str(layout["secret"] / "no-such-file.txt"), cfg)
    missing_folder = refusal(str(layout["tmp"] / "nowhere" / "at" / "all"), cfg)
    assert existing == missing == missing_folder


def test_a_missing_path_inside_a_root_says_so_relative_to_it(layout):
    cfg = hosted(layout)
    message = refusal("ml-20m", cfg)
    assert message.startswith("'datasets/ml-20m' does not exist in the server's data folders.")
    # "~" is not expanded (that would tell whether a user exists): it is a name inside the root
    assert refusal("~/.ssh/id_rsa", cfg).startswith("'datasets/~/.ssh/id_rsa' does not exist")
    assert refusal("~root", cfg).startswith("'datasets/~root' does not exist")


def test_a_symlink_out_of_a_root_is_refused(layout):
    cfg = hosted(layout)
    (layout["root"] / "escape").symlink_to(layout["secret"], target_is_directory=True)
    (layout["root"] / "ml-100k" / "passwd").symlink_to(layout["secret"] / "passwords.txt")
    for text in ("escape", "escape/passwords.txt", "ml-100k/passwd", str(layout["root"] / "escape")):
        assert refusal(text, cfg).startswith("That path is outside the data folders"), text
    (layout["root"] / "loop").symlink_to(layout["root"] / "loop")
    assert "outside the data folders" in refusal("loop", cfg) or "does not exist" in refusal("loop", cfg)


def test_the_uploads_folder_is_refused_even_inside_a_root(layout):
    """A root that contains the app's home stays a root, but the home (uploads, store) is never read."""
    home = layout["root"] / "app-home"
    (home / "uploads" / "someone").mkdir(parents=True)
    (home / "uploads" / "someone" / "abc--ratings.csv").write_text("user,item\n1,2\n")
    layout["home"] = home
    cfg = hosted(layout)
    assert cfg.data_roots == (layout["root"].resolve(),)
    for text in ("app-home", "app-home/uploads", "app-home/uploads/someone/abc--ratings.csv", "datasets"):
        message = refusal(text, cfg)
        assert "holds this server's uploads and experiment store" in message, text
    # nor is it offered
    assert "datasets/app-home" not in hosting.available_data(cfg)
    assert hosting.resolve_server_path("ml-100k", cfg) == layout["root"].resolve() / "ml-100k"


def test_without_roots_hosted_reads_nothing_from_disk(layout):
    cfg = hosting.config({"RECSYS_HOSTED": "1", "RECSYS_HOME": str(layout["home"])})
    assert cfg.data_roots == () and hosting.available_data(cfg) == []
    assert "reads no files from its own disk" in refusal(str(layout["root"] / "ml-100k"), cfg)


def test_bad_input_is_refused_politely(layout):
    cfg = hosted(layout)
    assert "Type a path" in refusal("   ", cfg)
    assert "not a valid path" in refusal("ml-100k\x00", cfg)
    assert "not a valid path" in refusal("a" * 2000, cfg)


# ---------------------------------------------------------------------- server paths, local
def test_local_mode_reads_any_path_and_names_only_the_last_part(layout):
    cfg = hosting.config({"RECSYS_HOME": str(layout["home"])})
    assert hosting.resolve_server_path(str(layout["secret"] / "passwords.txt"), cfg) == \
        layout["secret"] / "passwords.txt"
    message = refusal(str(layout["secret"] / "missing.csv"), cfg)
    assert message.startswith("Nothing called 'missing.csv' exists on the server at that path.")
    assert "Nothing called" in refusal("~no-such-user-here/x.csv", cfg)
    assert hosting.display_path(layout["secret"] / "passwords.txt", cfg) == "passwords.txt"


# ---------------------------------------------------------------------- descriptors
def test_a_descriptor_opens_only_for_its_owner_and_inside_the_roots(layout):
    cfg = hosted(layout)
    path, created = hosting.save_upload("ratings.csv", b"user,item\n1,2\n", "alice", cfg)
    assert created and path.parent == cfg.uploads() / hosting.owner_key("alice")
    mine = {"kind": "table", "path": str(path), "filename": "ratings.csv"}
    hosting.check_source(mine, "alice", cfg)
    with pytest.raises(DataError, match="another visitor's upload"):
        hosting.check_source(mine, "bob", cfg)
    with pytest.raises(DataError, match="another visitor's upload"):
        hosting.check_source({"kind": "path", "path": str(path)}, "bob", cfg)
    # the item file of a descriptor is checked too, and an upload from the old flat layout is nobody's
    with pytest.raises(DataError, match="another visitor's upload"):
        hosting.check_source({"kind": "table", "path": str(path), "items_path": str(path)}, "bob", cfg)
    with pytest.raises(DataError, match="another visitor's upload"):
        hosting.check_source({"kind": "table", "path": str(cfg.uploads() / "abc.csv")}, "alice", cfg)
    hosting.check_source({"kind": "path", "path": str(layout["root"] / "ml-100k")}, "bob", cfg)
    with pytest.raises(DataError, match="outside the data folders") as raised:
        hosting.check_source({"kind": "path", "path": str(layout["secret"])}, "bob", cfg)
    assert "/srv" not in str(raised.value)
    hosting.check_source({"kind": "sample"}, "bob", cfg)
    # locally any server path opens, but another session's upload still does not
    local = hosting.config({"RECSYS_HOME": str(layout["home"])})
    hosting.check_source({"kind": "path", "path": str(layout["secret"])}, "bob", local)
    with pytest.raises(DataError, match="another visitor's upload"):
        hosting.check_source(mine, "bob", local)


# ---------------------------------------------------------------------- uploads and quotas
def test_uploads_are_kept_per_visitor_and_deduplicated(layout):
    cfg = hosted(layout)
    first, created = hosting.save_upload("My ratings (2024).csv", b"a,b\n1,2\n", "alice", cfg)
    again, created_again = hosting.save_upload("My ratings (2024).csv", b"a,b\n1,2\n", "alice", cfg)
    assert created and not created_again and first == again
    assert first.name.endswith("--My_ratings_2024.csv") and first.read_bytes() == b"a,b\n1,2\n"
    assert hosting.owner_key("alice") not in ("alice", hosting.owner_key("bob")) and len(hosting.owner_key("x")) == 24
    assert [(u.name, u.size) for u in hosting.list_uploads("alice", cfg)] == [("My_ratings_2024.csv", 8)]
    assert hosting.list_uploads("bob", cfg) == []
    assert hosting.display_path(first, cfg) == "My_ratings_2024.csv"
    # path tricks in the uploaded name stay inside the visitor's folder
    sneaky, _ = hosting.save_upload("../../evil.zip", b"PK", "alice", cfg)
    assert sneaky.parent == first.parent and sneaky.name.endswith("--evil.zip")
    assert not hosting.delete_upload("bob", first.name, cfg)  # not his
    assert not hosting.delete_upload("alice", "../" + first.name, cfg)
    assert hosting.delete_upload("alice", first.name, cfg) and not first.exists()
    assert [u.name for u in hosting.list_uploads("alice", cfg)] == ["evil.zip"]


def test_one_upload_over_the_size_limit_is_refused_before_writing(layout):
    cfg = hosted(layout, upload_bytes=10 * KB)
    with pytest.raises(DataError) as raised:
        hosting.save_upload("big.csv", b"x" * (10 * KB + 1), "alice", cfg)
    assert str(raised.value).startswith("big.csv is 10.0 KB; this server takes uploads of up to 10.0 KB.")
    assert not cfg.uploads().exists() or hosting.folder_bytes(cfg.uploads()) == 0
    hosting.check_upload_size(10 * KB, "fits.csv", cfg)


def test_the_visitor_quota_is_checked_before_writing(layout):
    cfg = hosted(layout, visitor_upload_bytes=100 * KB)
    hosting.save_upload("a.csv", b"a" * (60 * KB), "alice", cfg)
    with pytest.raises(DataError) as raised:
        hosting.save_upload("b.csv", b"b" * (50 * KB), "alice", cfg)
    message = str(raised.value)
    assert message == ("This upload (50.0 KB) would bring your kept uploads to 110.0 KB, over the 100.0 KB each "
                       "visitor may keep (you keep 60.0 KB). Delete old uploads under 'Your uploads' on the Data "
                       "page, then upload again.")
    assert [u.name for u in hosting.list_uploads("alice", cfg)] == ["a.csv"]
    # another visitor has their own quota; the same bytes again cost nothing
    hosting.save_upload("b.csv", b"b" * (50 * KB), "bob", cfg)
    assert not hosting.save_upload("a.csv", b"a" * (60 * KB), "alice", cfg)[1]
    # deleting makes room
    hosting.delete_upload("alice", hosting.list_uploads("alice", cfg)[0].path.name, cfg)
    assert hosting.save_upload("b.csv", b"b" * (50 * KB), "alice", cfg)[1]
    assert hosting.folder_bytes(hosting.owner_uploads("alice", cfg)) == 50 * KB


def test_the_server_quota_counts_every_visitor(layout):
    cfg = hosted(layout, visitor_upload_bytes=100 * KB, server_upload_bytes=150 * KB)
    hosting.save_upload("a.csv", b"a" * (80 * KB), "alice", cfg)
    hosting.save_upload("b.csv", b"b" * (60 * KB), "bob", cfg)
    with pytest.raises(DataError) as raised:
        hosting.save_upload("c.csv", b"c" * (20 * KB), "carol", cfg)
    assert str(raised.value).startswith("The server's upload space is full: all visitors keep 140.0 KB of 150.0 KB, "
                                        "and this upload needs 20.0 KB.")
    assert hosting.list_uploads("carol", cfg) == []
    hosting.save_upload("c.csv", b"c" * (10 * KB), "carol", cfg)
    assert hosting.folder_bytes(cfg.uploads()) == 150 * KB


def test_human_bytes():
    assert [hosting.human_bytes(n) for n in (0, 1023, 1536, 5 * MB, 3 * hosting.GB)] == \
        ["0 bytes", "1023 bytes", "1.5 KB", "5.0 MB", "3.0 GB"]


def test_messages_never_carry_absolute_paths(layout):
    cfg = hosted(layout)
    texts = [str(layout["secret"]), str(layout["root"] / "missing"), str(Path("/etc/shadow")), "../secret"]
    for text in texts:
        message = refusal(text, cfg)
        assert str(layout["tmp"]) not in message and "/etc" not in message


def test_unreachable_and_half_written_uploads_are_swept(layout):
    cfg = hosted(layout, visitor_upload_bytes=100 * KB, server_upload_bytes=100 * KB)
    kept, _ = hosting.save_upload("a.csv", b"a" * (10 * KB), "alice", cfg)
    legacy = cfg.uploads() / "0123456789abcdef0123.csv"  # the layout before per-visitor folders
    legacy.write_bytes(b"l" * (60 * KB))
    stale = kept.with_name(kept.name + ".123.456.part")
    stale.write_bytes(b"s" * (20 * KB))
    os.utime(stale, (1_000, 1_000))
    fresh = kept.with_name(kept.name + ".789.012.part")  # an upload being written right now
    fresh.write_bytes(b"f" * (5 * KB))
    assert hosting.folder_bytes(cfg.uploads()) == 95 * KB
    # the sweep runs before the quota check, so the 60 KB nobody can open no longer block 40 KB more
    assert hosting.save_upload("b.csv", b"b" * (40 * KB), "bob", cfg)[1]
    assert not legacy.exists() and not stale.exists() and fresh.exists() and kept.exists()
    assert hosting.folder_bytes(cfg.uploads()) == 55 * KB
    assert hosting.sweep_uploads(cfg, now=fresh.stat().st_mtime + 3601) == 5 * KB and not fresh.exists()
    assert [u.name for u in hosting.list_uploads("alice", cfg)] == ["a.csv"]

"""course.runner's shared predicates: what in a student's folder the grader must not follow or walk into."""

import os

from course.runner import MAX_DEPTH, remove, unsafe_entries


def test_plain_files_and_folders_are_safe(tmp_path):
    (tmp_path / "a.ipynb").write_text("{}")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.png").write_bytes(b"png")
    assert unsafe_entries(tmp_path) == []


def test_links_special_files_and_set_id_bits_are_found(tmp_path):
    (tmp_path / "shadow.txt").symlink_to("/etc/shadow")
    (tmp_path / "original").write_text("x")
    os.link(tmp_path / "original", tmp_path / "hardlink")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "tool").write_text("x")
    (tmp_path / "tool").chmod(0o4755)
    found = {path.name: why for path, why in unsafe_entries(tmp_path)}
    assert found["shadow.txt"] == "symbolic link to /etc/shadow"
    assert found["original"].startswith("hard link") and found["hardlink"].startswith("hard link")
    assert found["fifo"] == "not a regular file" and found["tool"] == "setuid or setgid file"


def test_a_tree_too_deep_for_recursion_is_found_and_removed_without_recursing(tmp_path):
    path = tmp_path / "deep"
    os.makedirs(path)
    fd = os.open(path, os.O_RDONLY)
    for _ in range(1500):  # deeper than Python's recursion limit, as a kernel can make it with dir_fd
        os.mkdir("d", dir_fd=fd)
        fd, old = os.open("d", os.O_RDONLY, dir_fd=fd), fd
        os.close(old)
    os.close(fd)
    found = unsafe_entries(tmp_path)
    assert len(found) == 1 and found[0][1] == f"folder nested deeper than {MAX_DEPTH} levels"
    remove(tmp_path / "deep")
    assert not (tmp_path / "deep").exists()


def test_a_folder_closed_to_its_owner_is_found_and_removed(tmp_path):
    closed = tmp_path / "closed"
    closed.mkdir()
    (closed / "x").write_text("x")
    closed.chmod(0o300)
    if os.geteuid() == 0:  # root lists it all the same: nothing to report, and nothing hidden from it
        assert unsafe_entries(tmp_path) == []
    else:
        assert unsafe_entries(tmp_path)[0][1].startswith("folder that cannot be listed")
    remove(closed)
    assert not closed.exists()

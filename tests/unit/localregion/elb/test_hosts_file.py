"""The managed /etc/hosts block: written, replaced and removed without touching other lines."""

from __future__ import annotations

import threading
from pathlib import Path

from webfleet.localregion.elb.hosts_file import HostsBlock

ORIGINAL = "127.0.0.1 localhost\n# a comment\n10.0.0.1 other\n"


def test_block_is_added_replaced_and_removed_leaving_the_rest_as_it_was(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text(ORIGINAL)
    block = HostsBlock(hosts, "webfleet region abcd")

    block.write({"web-1.us-east-1.elb.amazonaws.com": "127.77.1.2"})
    assert hosts.read_text() == (
        ORIGINAL
        + "# BEGIN webfleet region abcd\n"
        + "127.77.1.2 web-1.us-east-1.elb.amazonaws.com\n"
        + "# END webfleet region abcd\n"
    )
    block.write({"b.example": "127.77.1.3", "a.example": "127.77.1.2"})
    assert block.entries() == {"a.example": "127.77.1.2", "b.example": "127.77.1.3"}
    assert hosts.read_text().count("# BEGIN") == 1

    block.remove()
    assert hosts.read_text() == ORIGINAL


def two_regions_blocks(tmp_path: Path) -> tuple[Path, HostsBlock, HostsBlock]:
    """A hosts file with a block of region one's, then one of region two's."""
    hosts = tmp_path / "hosts"
    hosts.write_text(ORIGINAL)
    first, second = HostsBlock(hosts, "region one"), HostsBlock(hosts, "region two")
    first.write({"one.example": "127.77.1.2"})
    second.write({"two.example": "127.77.2.2"})
    return hosts, first, second


def test_two_regions_keep_their_own_blocks(tmp_path: Path) -> None:
    hosts, first, second = two_regions_blocks(tmp_path)
    first.remove()
    assert first.entries() == {}
    assert second.entries() == {"two.example": "127.77.2.2"}
    second.write({})
    assert hosts.read_text() == ORIGINAL


def test_the_file_is_written_in_place(tmp_path: Path) -> None:
    # /etc/hosts is often a bind mount: it must keep its inode (no rename over it).
    hosts = tmp_path / "hosts"
    hosts.write_text(ORIGINAL)
    inode = hosts.stat().st_ino
    HostsBlock(hosts, "region").write({"a.example": "127.77.1.2"})
    assert hosts.stat().st_ino == inode


def test_a_block_keeps_its_place_and_leaves_another_regions_alone(tmp_path: Path) -> None:
    hosts, first, second = two_regions_blocks(tmp_path)
    before_second = hosts.read_text().split("# BEGIN region two")[0]

    first.write({"one.example": "127.77.1.2", "uno.example": "127.77.1.3"})
    text = hosts.read_text()
    assert text.index("# BEGIN region one") < text.index("# BEGIN region two")
    assert second.entries() == {"two.example": "127.77.2.2"}
    second.write({"two.example": "127.77.2.9"})
    assert hosts.read_text().startswith(
        before_second.replace("\n# END region one", "\n127.77.1.3 uno.example\n# END region one")
    )
    first.remove()
    second.remove()
    assert hosts.read_text() == ORIGINAL


def test_lookups_never_find_another_regions_names_missing_while_a_block_changes(
    tmp_path: Path,
) -> None:
    # Every name lookup reads the whole file: a truncate-then-write left it empty for a moment.
    hosts = tmp_path / "hosts"
    hosts.write_text(ORIGINAL)
    HostsBlock(hosts, "steady").write({"steady.example": "127.77.1.2"})
    changing = HostsBlock(hosts, "changing")
    done = threading.Event()
    misses = 0

    def read_while_writing() -> None:
        nonlocal misses
        while not done.is_set():
            if "127.77.1.2 steady.example\n" not in hosts.read_text():
                misses += 1

    reader = threading.Thread(target=read_while_writing)
    reader.start()
    try:
        for round_ in range(300):
            changing.write({f"n{i}.example": "127.77.2.2" for i in range(round_ % 7)})
    finally:
        done.set()
        reader.join()
    assert misses == 0

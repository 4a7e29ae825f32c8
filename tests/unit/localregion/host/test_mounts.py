"""The mountinfo parser: escaped paths, optional fields, and what lies under a directory."""

from __future__ import annotations

from pathlib import Path

from webfleet.localregion.host.mounts import Mount, mounts, mounts_under, parse_mountinfo_line

# A mount point holding a space, a tab and a backslash, as the kernel escapes them.
ESCAPED = (
    r"412 27 0:52 / /srv/state\040dir/a\011b\134c rw,relatime shared:210 master:1"
    r" - overlay my\040overlay rw,lowerdir=/l,upperdir=/u,workdir=/w"
)


def test_octal_escapes_in_the_point_and_source_are_decoded() -> None:
    assert parse_mountinfo_line(ESCAPED + "\n") == Mount(
        point=Path("/srv/state dir/a\tb\\c"), fstype="overlay", source="my overlay"
    )


def test_a_line_without_optional_fields_ends_them_at_once() -> None:
    line = "36 35 98:0 /mnt1 /mnt2 rw,noatime - tmpfs webfleet-nspawn rw,mode=755"
    assert parse_mountinfo_line(line) == Mount(Path("/mnt2"), "tmpfs", "webfleet-nspawn")


def test_every_line_of_a_file_is_one_mount_in_order(tmp_path: Path) -> None:
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text("1 0 8:1 / / rw - ext4 /dev/sda1 rw\n" + ESCAPED + "\n", encoding="utf-8")
    assert [mount.point for mount in mounts(mountinfo)] == [
        Path("/"),
        Path("/srv/state dir/a\tb\\c"),
    ]


def test_this_process_sees_its_root_mounted() -> None:
    assert Path("/") in [mount.point for mount in mounts()]


def test_nothing_is_mounted_under_a_fresh_directory(tmp_path: Path) -> None:
    assert mounts_under(tmp_path) == []

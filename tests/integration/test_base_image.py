"""The real base image: debootstrap, configuration, the cache, and what a killed build leaves.

The full image is built once into the default cache (~90 s on a new machine) and reused after.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from webfleet.localregion.errors import LocalRegionError
from webfleet.localregion.host.mounts import mounts_under
from webfleet.localregion.images.baseimage import (
    CLOUD_CFG,
    BaseImage,
    BaseImageSpec,
    cached_base_image,
    default_cache_dir,
    ensure_base_image,
    remove_stale_builds,
)

pytestmark = [pytest.mark.integration, pytest.mark.runtime_minutes(1)]

if os.geteuid() != 0 or shutil.which("debootstrap", path="/usr/sbin:/sbin:/usr/bin") is None:
    pytest.fail("building the base image needs root and debootstrap: run scripts/bootstrap")


@pytest.fixture(scope="module")
def built() -> tuple[BaseImage, list[str]]:
    messages: list[str] = []
    return ensure_base_image(default_cache_dir(), messages.append), messages


@pytest.fixture(scope="module")
def image(built: tuple[BaseImage, list[str]]) -> BaseImage:
    return built[0]


def test_manifest_is_complete(image: BaseImage) -> None:
    assert image.manifest_path.is_file()
    assert image.key == BaseImageSpec().cache_key
    assert image.directory.name == image.key
    assert image.name.startswith("debian-12-amd64-")
    assert image.size_bytes > 100_000_000
    assert image.build_seconds > 0
    assert set(image.package_versions) == {"cloud-init", "systemd", "python3"}
    assert all(image.package_versions.values())


def test_image_is_configured_as_the_spike_found_necessary(image: BaseImage) -> None:
    root = image.rootfs
    assert (root / "etc/cloud/cloud.cfg.d/90_webfleet.cfg").read_text() == CLOUD_CFG
    journald = (root / "etc/systemd/journald.conf.d/90-webfleet.conf").read_text()
    assert "Storage=volatile" in journald
    assert list((root / "etc/ssh").glob("ssh_host_*")) == []
    assert (root / "etc/machine-id").read_text() == ""
    assert os.readlink(root / "var/lib/dbus/machine-id") == "/etc/machine-id"
    assert (root / "etc/resolv.conf").read_text() == ""
    assert "localhost" in (root / "etc/hosts").read_text()
    assert list((root / "var/cache/apt/archives").glob("*.deb")) == []
    for binary in ("usr/bin/python3", "usr/bin/cloud-init", "usr/sbin/sshd", "lib/systemd/systemd"):
        assert (root / binary).exists(), binary


def test_python_venv_works_inside_the_image(image: BaseImage) -> None:
    subprocess.run(["chroot", str(image.rootfs), "python3", "-c", "import venv"], check=True)


def test_second_ensure_is_a_cache_hit(image: BaseImage) -> None:
    messages: list[str] = []
    again = ensure_base_image(default_cache_dir(), messages.append)
    assert again == image  # same built_at: nothing was rebuilt
    assert messages == [f"using cached base image {image.name}"]


def test_nothing_is_left_beside_the_image(image: BaseImage) -> None:
    cache = image.directory.parent
    assert [p.name for p in cache.iterdir() if p.name.startswith(".build-")] == []
    assert mounts_under(cache) == []


@pytest.fixture
def throwaway_cache() -> Iterator[Path]:
    # /var/tmp, not /tmp: a nodev/noexec tmpfs on /tmp would break debootstrap.
    path = Path(tempfile.mkdtemp(prefix="webfleet-image-cache-", dir="/var/tmp"))
    yield path
    remove_stale_builds(path)
    if not mounts_under(path):  # never delete through a mount left by a failed test
        shutil.rmtree(path)


def test_failed_build_leaves_nothing(throwaway_cache: Path) -> None:
    spec = BaseImageSpec(mirror="http://127.0.0.1:9/debian")  # nothing listens on port 9
    with pytest.raises(LocalRegionError, match="debootstrap failed"):
        ensure_base_image(throwaway_cache, lambda _: None, spec)
    assert {p.name for p in throwaway_cache.iterdir()} <= {".lock", "debootstrap-failed.log"}


# Another key than the real image's, so it really builds; smaller, so it mounts sooner.
SMALL_SPEC = BaseImageSpec(packages=("ca-certificates",))
INTERRUPTED_BUILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from webfleet.localregion.images.baseimage import BaseImageSpec, ensure_base_image
    spec = BaseImageSpec(packages=("ca-certificates",))
    ensure_base_image(Path(sys.argv[1]), lambda message: print(message, flush=True), spec)
    """
)


def _interrupt_build_once_mounted(cache: Path, how: signal.Signals) -> int:
    builder = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED_BUILD, str(cache)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Interrupt debootstrap's second stage, when /proc and /sys are mounted in the target.
        deadline = time.monotonic() + 240
        while not mounts_under(cache):
            assert builder.poll() is None, "the build ended before it mounted anything"
            assert time.monotonic() < deadline, "debootstrap never mounted /proc in the target"
            time.sleep(0.2)
    finally:
        builder.send_signal(how)
    return builder.wait(timeout=60)


def test_killed_build_is_cleaned_up_by_the_next_call(throwaway_cache: Path) -> None:
    _interrupt_build_once_mounted(throwaway_cache, signal.SIGKILL)

    assert mounts_under(throwaway_cache)  # the kill really left mounts behind
    assert cached_base_image(throwaway_cache, SMALL_SPEC) is None
    assert not (throwaway_cache / SMALL_SPEC.cache_key).exists()

    removed = remove_stale_builds(throwaway_cache)

    assert [path.name.startswith(".build-") for path in removed] == [True]
    assert mounts_under(throwaway_cache) == []
    assert [p.name for p in throwaway_cache.iterdir()] == [".lock"]


def test_ctrl_c_build_cleans_up_after_itself(throwaway_cache: Path) -> None:
    returncode = _interrupt_build_once_mounted(throwaway_cache, signal.SIGINT)

    assert returncode != 0
    assert mounts_under(throwaway_cache) == []
    assert [p.name for p in throwaway_cache.iterdir()] == [".lock"]

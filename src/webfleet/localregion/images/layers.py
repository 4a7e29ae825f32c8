"""The filesystem behind each AMI: a stack of overlay layers, topmost first.

A base image is one layer (its cached rootfs, shared and never written). CreateImage copies a
stopped instance's upper directory into a new layer under <state_dir>/images/<ami-id>/ and stacks
it on the instance's own layers. Layers are removed once no image and no machine uses them.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterable
from pathlib import Path

from webfleet.localregion.errors import LocalRegionError
from webfleet.localregion.host.mounts import remove_directory_safely


class ImageLayers:
    """Which layers make up each registered AMI of one region."""

    def __init__(self, state_dir: Path) -> None:
        self.images_dir = state_dir.absolute() / "images"
        self._layers: dict[str, tuple[Path, ...]] = {}
        self._lock = threading.Lock()
        # AMIs whose layer is being copied: not registered yet, and not to be collected.
        self._copying: set[str] = set()
        self._collecting = threading.Lock()

    def register(self, ami_id: str, layers: tuple[Path, ...]) -> None:
        with self._lock:
            self._layers[ami_id] = layers

    def registrations(self) -> dict[str, tuple[Path, ...]]:
        """AMI → its layers, for every registered AMI."""
        with self._lock:
            return dict(self._layers)

    def layers_of(self, ami_id: str) -> tuple[Path, ...]:
        with self._lock:
            layers = self._layers.get(ami_id)
        if layers is None:
            raise LocalRegionError(
                f"{ami_id} has no filesystem in the local region: launch a base image or one "
                "made by CreateImage (Packer) in this region"
            )
        return layers

    def knows(self, ami_id: str) -> bool:
        with self._lock:
            return ami_id in self._layers

    def snapshot(self, ami_id: str, upper_dir: Path, below: tuple[Path, ...]) -> tuple[Path, ...]:
        """Copy upper_dir (of a stopped machine) as the top layer of ami_id; returns its layers.

        cp -a keeps what overlayfs needs in a lower layer: whiteout devices, opaque-dir xattrs,
        owners, modes and hard links. Copied to a temporary name first: a half-copied layer is
        never registered.
        """
        with self._collecting:
            self._copying.add(ami_id)
        try:
            return self._copy_layer(ami_id, upper_dir, below)
        finally:
            with self._collecting:
                self._copying.discard(ami_id)

    def _copy_layer(
        self, ami_id: str, upper_dir: Path, below: tuple[Path, ...]
    ) -> tuple[Path, ...]:
        target = self.images_dir / ami_id / "layer"
        partial = target.with_name("layer.partial")
        if partial.exists():
            remove_directory_safely(partial)
        partial.parent.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            ["cp", "-a", "--reflink=auto", f"{upper_dir}/.", str(partial)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            shutil.rmtree(partial, ignore_errors=True)
            raise LocalRegionError(f"snapshot of {upper_dir} failed: {result.stderr.strip()}")
        partial.replace(target)
        layers = (target, *below)
        self.register(ami_id, layers)
        return layers

    def deregister(self, ami_id: str) -> None:
        with self._lock:
            self._layers.pop(ami_id, None)

    def collect(self, in_use: Iterable[Path]) -> list[Path]:
        """Remove the layers of ours that no registered image and no machine (in_use) uses,
        and that no CreateImage is copying (one instance's termination collects while another
        instance's image is made)."""
        with self._collecting:
            with self._lock:
                used = {layer for layers in self._layers.values() for layer in layers}
            used.update(in_use)
            removed: list[Path] = []
            if not self.images_dir.is_dir():
                return removed
            for directory in sorted(self.images_dir.iterdir()):
                if directory.name not in self._copying and directory / "layer" not in used:
                    remove_directory_safely(directory)
                    removed.append(directory)
            return removed

    def remove_all(self) -> None:
        with self._lock:
            self._layers = {}
        if self.images_dir.exists():
            remove_directory_safely(self.images_dir)

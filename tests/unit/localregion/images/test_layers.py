"""Image layers: CreateImage's copy is never collected half-way, as happened when one instance's
termination (which collects unused layers) fell during another instance's CreateImage."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from webfleet.localregion.images.layers import ImageLayers


def test_a_layer_being_copied_survives_a_collection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    upper = tmp_path / "upper"
    (upper / "opt" / "app").mkdir(parents=True)
    (upper / "opt" / "app" / "main.py").write_text("print('hi')\n")
    base = tmp_path / "base-layer"
    base.mkdir()
    layers = ImageLayers(tmp_path / "state")
    real_run = subprocess.run

    def copy_while_an_instance_terminates(*args: Any, **kwargs: Any) -> Any:
        # What a terminating instance does meanwhile: collect the layers nothing uses.
        assert layers.collect(in_use=[base]) == []
        return real_run(*args, **kwargs)

    monkeypatch.setattr(subprocess, "run", copy_while_an_instance_terminates)
    made = layers.snapshot("ami-0123456789abcdef0", upper, (base,))

    assert made[1:] == (base,)
    assert (made[0] / "opt" / "app" / "main.py").read_text() == "print('hi')\n"
    # Once registered, it stays; once deregistered and unused, it goes.
    monkeypatch.setattr(subprocess, "run", real_run)
    assert layers.collect(in_use=[]) == []
    layers.deregister("ami-0123456789abcdef0")
    assert layers.collect(in_use=[]) == [made[0].parent]

"""The moto patch registry: every registered patch applied, each at most once per process."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import pytest

from webfleet.localregion.api import patches
from webfleet.localregion.api.hooks import HookSlot
from webfleet.localregion.api.patches import Patch, PatchRegistry


def counting(registry: PatchRegistry, calls: Counter[str], *names: str) -> list[Patch]:
    """Register a patch per name that counts its applications in `calls`."""

    def change(name: str) -> Callable[[], None]:
        def count() -> None:
            calls[name] += 1

        return count

    return [registry.register(name, change(name)) for name in names]


def test_apply_all_applies_every_patch_once_even_when_run_twice() -> None:
    registry, calls = PatchRegistry(), Counter[str]()
    registered = counting(registry, calls, "ec2.one", "elbv2.two", "autoscaling.three")

    registry.apply_all()
    registry.apply_all()

    assert calls == {"ec2.one": 1, "elbv2.two": 1, "autoscaling.three": 1}
    assert all(patch.applied for patch in registered)


def test_a_patch_applied_first_by_itself_is_not_applied_again() -> None:
    registry, calls = PatchRegistry(), Counter[str]()
    (hooks,) = counting(registry, calls, "ec2.hooks")

    hooks.apply()  # as a component does when it starts, before the API app
    registry.apply_all()

    assert calls == {"ec2.hooks": 1}


def test_concurrent_applications_apply_once() -> None:
    registry, calls = PatchRegistry(), Counter[str]()
    (patch,) = counting(registry, calls, "ec2.one")
    start = threading.Barrier(8)

    def apply() -> None:
        start.wait()
        patch.apply()

    threads = [threading.Thread(target=apply) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert calls == {"ec2.one": 1}


def test_the_decorator_registers_the_function_as_a_patch() -> None:
    registry, calls = PatchRegistry(), Counter[str]()

    @registry.patch("ec2.decorated")
    def decorated() -> None:
        calls["ec2.decorated"] += 1

    assert registry.patches() == [decorated]
    registry.apply_all()
    assert decorated.applied
    assert calls == {"ec2.decorated": 1}


def test_a_name_is_registered_once() -> None:
    registry = PatchRegistry()
    registry.register("ec2.one", lambda: None)
    with pytest.raises(ValueError, match=r"ec2\.one"):
        registry.register("ec2.one", lambda: None)


def test_hook_slot_applies_its_patch_on_the_first_install_only() -> None:
    registry, calls = PatchRegistry(), Counter[str]()
    (patch,) = counting(registry, calls, "ec2.hooks")
    slot: HookSlot[str] = HookSlot(patch)
    first, second = "first component", "second component"

    slot.install(first)
    slot.uninstall(first)
    slot.install(second)
    slot.uninstall(first)  # not the installed one: nothing changes

    assert calls == {"ec2.hooks": 1}
    assert slot.active is second
    slot.uninstall(second)
    assert slot.active is None


def test_the_service_packages_patches_are_all_registered_and_applied() -> None:
    patches.apply_all()
    patches.apply_all()  # as a second API app in the process would

    registered = patches.registry.patches()
    # One of each kind: an API fix, a HookSlot's hooks, a patch its component applies itself.
    expected = {"ec2.ami_creation_date", "elbv2.load_balancer_hooks", "autoscaling.spread_launches"}
    assert expected <= {patch.name for patch in registered}
    assert all(patch.applied for patch in registered)

"""How HAProxy's view of a server maps to ELB target health (pure: rows as `show stat` gives)."""

from __future__ import annotations

from webfleet.localregion.elb.load_balancers import _health_from_row


def row(status: str, check: str, code: str = "") -> dict[str, str]:
    return {"status": status, "check_status": check, "check_code": code}


def test_up_is_healthy_and_maintenance_unused() -> None:
    assert _health_from_row(row("UP", "L7OK", "200"), was_up=True).state == "healthy"
    assert _health_from_row(row("MAINT", ""), was_up=False).state == "unused"


def test_new_target_is_initial_while_its_first_checks_run() -> None:
    health = _health_from_row(row("DOWN", "L7STS", "500"), was_up=False)
    assert (health.state, health.reason) == ("initial", "Elb.RegistrationInProgress")


def test_new_target_failing_for_the_unhealthy_threshold_is_unhealthy() -> None:
    health = _health_from_row(row("DOWN", "L7STS", "500"), was_up=False, failed_long_enough=True)
    assert (health.state, health.reason) == ("unhealthy", "Target.ResponseCodeMismatch")
    assert health.description == "Health checks failed with these codes: [500]"


def test_new_target_whose_last_check_passed_stays_initial() -> None:
    # Down only because HAProxy needs `rise` passes in a row: still coming up.
    health = _health_from_row(row("DOWN", "L7OK", "200"), was_up=False, failed_long_enough=True)
    assert health.state == "initial"


def test_target_that_was_up_and_fails_is_unhealthy_at_once() -> None:
    timeout = _health_from_row(row("DOWN", "* L4TOUT"), was_up=True)
    assert (timeout.state, timeout.reason) == ("unhealthy", "Target.Timeout")

"""HTTP checks through the ALB's DNS name, as a user's browser reaches the app.

Every listener answers as the stack configures it (HTTP forwards, or redirects to HTTPS; HTTPS
completes a TLS handshake and forwards), the health path answers with the matcher's code,
every InService instance answers within a bounded number of requests (the app names itself in
X-Instance-Id, or its hostname in X-Served-By), every response carries the expected app version
(X-App-Version, if the app sends it), and the target group reports every instance healthy. An app
that names neither its instance nor its version has those two checks skipped, saying why.

The certificate chain is not verified: the ALB's DNS name is never the certificate's name on
AWS, and locally the certificate is self-signed. The handshake itself is checked.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from webfleet.stages.verify.checks import Check
from webfleet.traffic import AlbTarget, Answer, Fetch, Listener

# Requests per InService instance within which each must have answered at least once.
REQUESTS_PER_INSTANCE = 10
MIN_DISTRIBUTION_REQUESTS = 20
# Stop sending after this many requests in a row got no answer (refused, timed out, no DNS).
UNANSWERED_LIMIT = 3
GROUP = "http"


def matcher_accepts(matcher: str, status: int) -> bool:
    """Whether a target group matcher ("200", "200,204", "200-299") accepts a status code."""
    for part in matcher.split(","):
        if "-" in part:
            low, high = part.split("-", 1)
            if int(low) <= status <= int(high):
                return True
        elif int(part) == status:
            return True
    return False


def check_listeners(alb: AlbTarget, fetch_answer: Fetch) -> list[Check]:
    """Each listener answers as configured: forward → the health path's matcher code through
    it; redirect_https → 301 to the same path on the HTTPS port."""
    checks = []
    for listener in alb.listeners:
        started = time.monotonic()
        name = f"{listener.protocol} listener :{listener.port} {listener.action}"
        target = f"{alb.dns_name}:{listener.port}"
        if listener.action == "redirect_https":
            path = alb.health_check_path + "?webfleet-verify=redirect"
            answer = fetch_answer(listener, path)
            passed, detail = _redirect_verdict(alb.dns_name, listener, path, answer)
        else:
            answer = fetch_answer(listener, alb.health_check_path)
            passed = answer.status is not None and matcher_accepts(alb.matcher, answer.status)
            detail = f"GET {alb.health_check_path} → {answer.describe()}"
            if not passed and answer.status is not None:
                detail += f" (matcher {alb.matcher})"
            if answer.tls:
                detail += f"; {answer.tls}"
        checks.append(Check(name, target, passed, detail, _since(started), group=GROUP))
    return checks


def _redirect_verdict(
    dns_name: str, listener: Listener, path: str, answer: Answer
) -> tuple[bool, str]:
    if answer.status != 301:
        return False, f"GET {path} → {answer.describe()}, expected a 301 redirect to HTTPS"
    location = urlsplit(answer.location or "")
    expected_port = listener.redirect_port or 443
    request = urlsplit(path)
    same_target = (
        location.scheme == "https"
        and (location.hostname or "").lower() == dns_name.lower()
        and (location.port or 443) == expected_port
        and location.path == request.path
        and location.query == request.query
    )
    if not same_target:
        return False, (
            f"301 to {answer.location!r}, expected https://{dns_name}:{expected_port}{path}"
        )
    return True, f"301 → {answer.location}"


def check_distribution(
    alb: AlbTarget, instance_ids: Sequence[str], fetch_answer: Fetch
) -> tuple[Check, list[Answer]]:
    """Every InService instance answers through the ALB within a bounded number of requests."""
    started = time.monotonic()
    listener = alb.serving
    limit = max(MIN_DISTRIBUTION_REQUESTS, REQUESTS_PER_INSTANCE * len(instance_ids))
    wanted = set(instance_ids)
    answers: list[Answer] = []
    seen: Counter[str] = Counter()
    while len(answers) < limit and not wanted <= set(seen):
        answer = fetch_answer(listener, alb.health_check_path)
        answers.append(answer)
        if answer.instance_id:
            seen[answer.instance_id] += 1
        # A listener that does not answer at all will not start to within this check.
        if len(answers) >= UNANSWERED_LIMIT and all(
            a.status is None for a in answers[-UNANSWERED_LIMIT:]
        ):
            break
    passed, detail = distribution_verdict(instance_ids, answers, limit)
    name = f"every instance answers through {listener.protocol} :{listener.port}"
    if answers and all(a.ok and not a.instance_id for a in answers):
        detail = (
            f"{len(answers)} requests answered, none naming its instance: the app sends no "
            "X-Instance-Id or X-Served-By header (its hostname), so which one answered is not "
            "known; each instance was checked on it (specs) and by the target group"
        )
        check = Check(name, alb.dns_name, True, detail, _since(started), True, GROUP)
        return check, answers
    check = Check(name, alb.dns_name, passed, detail, _since(started), group=GROUP)
    return check, answers


def distribution_verdict(
    instance_ids: Sequence[str], answers: Sequence[Answer], limit: int
) -> tuple[bool, str]:
    seen = Counter(a.instance_id for a in answers if a.instance_id)
    failed = [a for a in answers if not a.ok]
    missing = sorted(set(instance_ids) - set(seen))
    strangers = sorted(set(seen) - set(instance_ids))
    counts = ", ".join(f"{instance} x{count}" for instance, count in sorted(seen.items()))
    detail = f"{len(answers)} requests: {counts or 'no instance named itself'}"
    if failed:
        errors = Counter(a.describe() for a in failed)
        detail += "; failed: " + ", ".join(f"{what} x{n}" for what, n in errors.most_common(3))
    if missing:
        detail += f"; never answered within {limit} requests: {', '.join(missing)}"
    if strangers:
        detail += f"; answers from instances not InService: {', '.join(strangers)}"
    return not missing and not failed and not strangers and bool(instance_ids), detail


def check_version(alb: AlbTarget, answers: Sequence[Answer], expected: str | None) -> Check:
    """Every answer names the expected app version (from the newest bake's manifest)."""
    name = "app version in X-App-Version"
    if expected is None:
        return Check(
            name,
            alb.dns_name,
            True,
            "no bake manifest: the expected version is unknown (run `invoke bake`)",
            0.0,
            skipped=True,
            group=GROUP,
        )
    # The app's answers: they name the instance (the load balancer's own error pages do not).
    answered = [a for a in answers if a.instance_id]
    if answers and all(a.ok and not a.version for a in answers):
        detail = f"expected {expected}; the app sends no X-App-Version header, nothing to compare"
        return Check(name, alb.dns_name, True, detail, 0.0, skipped=True, group=GROUP)
    if not answered:
        statuses = Counter(a.describe() for a in answers)
        seen = ", ".join(f"{what} x{n}" for what, n in statuses.most_common(3)) or "no requests"
        detail = f"expected {expected}; no answer came from the app ({seen})"
        return Check(name, alb.dns_name, False, detail, 0.0, group=GROUP)
    versions = Counter(a.version or "(none)" for a in answered)
    wrong = {version: n for version, n in versions.items() if version != expected}
    seen = ", ".join(f"{version} x{n}" for version, n in sorted(versions.items()))
    passed = not wrong
    detail = f"expected {expected}; saw {seen}"
    if wrong:
        by_instance = sorted(
            {
                f"{a.instance_id or '?'}={a.version or '(none)'}"
                for a in answered
                if a.version != expected
            }
        )
        detail += f" (wrong on {', '.join(by_instance)})"
    return Check(name, alb.dns_name, passed, detail, 0.0, group=GROUP)


def check_target_health(
    health: Sequence[dict[str, Any]], instance_ids: Sequence[str], target_group: str
) -> Check:
    """describe_target_health: every InService instance registered and healthy."""
    states = {
        entry["Target"]["Id"]: (
            entry["TargetHealth"]["State"],
            entry["TargetHealth"].get("Description") or entry["TargetHealth"].get("Reason", ""),
        )
        for entry in health
    }
    problems = []
    for instance_id in sorted(instance_ids):
        state, reason = states.get(instance_id, ("unregistered", ""))
        if state != "healthy":
            problems.append(f"{instance_id} {state}" + (f" ({reason})" if reason else ""))
    summary = ", ".join(f"{i} {s}" for i, (s, _) in sorted(states.items())) or "no targets"
    passed = not problems and bool(instance_ids)
    detail = summary if passed else "; ".join(problems) + f" — target group: {summary}"
    return Check("targets healthy", target_group, passed, detail, 0.0, group=GROUP)


def _since(started: float) -> float:
    return round(time.monotonic() - started, 3)

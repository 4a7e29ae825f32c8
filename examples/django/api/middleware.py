"""Answers the load balancer's health check before Django validates the Host header.

The target group checks each instance at its private IP, so the request's Host is that IP (or
missing), which is not in ALLOWED_HOSTS: SecurityMiddleware and CommonMiddleware would answer
400 and the target would never turn healthy. Placed first in MIDDLEWARE, this answers the health
path itself; every other request still goes through the host validation.
"""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from api.views import health


class HealthCheckMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.path = settings.HEALTH_CHECK_PATH

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info == self.path and request.method in ("GET", "HEAD"):
            return health(request)
        return self.get_response(request)

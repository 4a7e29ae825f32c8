"""The API: a health check and which instance answered."""

import os
import socket

import django
from django.http import HttpRequest, JsonResponse


def health(request: HttpRequest) -> JsonResponse:
    """The target group's health check (app.health_check_path)."""
    response = JsonResponse({"connected": True})
    response["X-Served-By"] = socket.gethostname()
    return response


def info(request: HttpRequest) -> JsonResponse:
    """Which instance answered: refresh through the load balancer to see it change."""
    response = JsonResponse(
        {
            "app": os.environ.get("APP_NAME", "django-api"),
            "environment": os.environ.get("APP_ENVIRONMENT", "unknown"),
            "hostname": socket.gethostname(),
            "django": django.get_version(),
        }
    )
    response["X-Served-By"] = socket.gethostname()
    return response

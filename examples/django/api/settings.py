"""Settings for django-api, read from the environment webfleet gives every instance.

The env file (templates/app.env.j2) sets APP_NAME, APP_PORT, APP_ENVIRONMENT,
APP_HEALTH_CHECK_PATH, APP_LOAD_BALANCER_DNS_NAME and APP_URL, plus the stack's app.env; secrets
(app.secrets, e.g. APP_SECRET_KEY) are read from SSM at boot into the same file.
"""

import os
from pathlib import Path
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent

# Set APP_SECRET_KEY through app.secrets (an SSM parameter) for anything but a demo.
# INSECURE FALLBACK, FOR THIS EXAMPLE ONLY: anyone reading this file knows it.
SECRET_KEY = os.environ.get("APP_SECRET_KEY") or "django-insecure-example-only-set-APP_SECRET_KEY"

DEBUG = False

# Where users reach the app: the load balancer's DNS name (and APP_ALLOWED_HOSTS, comma-separated,
# for a domain of your own), plus the instance itself for a curl on it. The load balancer's health
# checks come with the instance's private IP as Host, or none: HealthCheckMiddleware answers them
# before anything looks at the Host header, so the private IPs need not be listed here.
ALLOWED_HOSTS = [
    host
    for host in (
        os.environ.get("APP_LOAD_BALANCER_DNS_NAME", ""),
        *os.environ.get("APP_ALLOWED_HOSTS", "").split(","),
        "localhost",
        "127.0.0.1",
    )
    if host.strip()
]

# The origin of the site (https when the ALB has an HTTPS listener), for forms posted to it.
_app_url = urlsplit(os.environ.get("APP_URL", ""))
CSRF_TRUSTED_ORIGINS = [f"{_app_url.scheme}://{_app_url.netloc}"] if _app_url.netloc else []

# The ALB terminates TLS and says so in X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# The path the target group checks; the stack's app.health_check_path.
HEALTH_CHECK_PATH = os.environ.get("APP_HEALTH_CHECK_PATH", "/api/v1/test/")

INSTALLED_APPS: list[str] = []

MIDDLEWARE = [
    # First: answers the health check before SecurityMiddleware and CommonMiddleware validate
    # the Host header (which would answer the ALB's checks with 400).
    "api.middleware.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "api.urls"
WSGI_APPLICATION = "api.wsgi.application"

# No database: the API keeps no state, so nothing to migrate before serving.
DATABASES: dict[str, dict[str, str]] = {}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# To stderr, which systemd sends to the journal (`journalctl -u django-api`).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO").upper()},
}

"""webfleet's sample web app, baked into the AMI and served by gunicorn."""

import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def _version() -> str:
    """pyproject.toml's version, the one bake tags the AMI with: from the installed package's
    metadata (on an instance), else from the source tree's pyproject.toml. A copy kept here
    went stale whenever only pyproject.toml was bumped."""
    try:
        return version("webfleet-app")
    except PackageNotFoundError:
        pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
        return str(tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"])


__version__ = _version()

"""webfleet's sample web app, baked into the AMI and served by gunicorn."""

# Keep in step with pyproject.toml's version (a unit test checks it).
__version__ = "1.0.0"

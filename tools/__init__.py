"""Repository tooling run from a checkout (`.venv/bin/python -m tools.NAME`), not shipped."""

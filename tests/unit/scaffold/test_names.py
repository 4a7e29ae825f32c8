"""scaffold.names: any directory name becomes a valid app.name."""

from __future__ import annotations

import re

import pytest

from webfleet.scaffold.names import app_name

VALID = re.compile(r"^[a-z][a-z0-9-]{0,19}$")


@pytest.mark.parametrize(
    ("directory", "name"),
    [
        ("shop", "shop"),
        ("My_Shop.v2", "my-shop-v2"),
        ("--web  app--", "web-app"),
        ("2048", "app-2048"),
        ("_", "app"),
        ("Café Münster", "caf-m-nster"),
        ("a-very-long-directory-name-indeed", "a-very-long-director"),
        ("abcdefghijklmnopqrs-t", "abcdefghijklmnopqrs"),
    ],
)
def test_directory_names_become_valid_app_names(directory: str, name: str) -> None:
    assert app_name(directory) == name
    assert VALID.match(name)

"""scaffold.stack_file: values are TOML literals, notes are comments, the CIDR is the name's."""

from __future__ import annotations

import tomllib

import pytest

from webfleet.scaffold.proposal import Note
from webfleet.scaffold.stack_file import VPC_OCTETS, WIDTH, comment, toml_value, vpc_octet


@pytest.mark.parametrize(
    "value", ['gunicorn "a b" --x', "back\\slash", "tab\tand\nnewline\x7f", "$PORT ünï", ""]
)
def test_strings_survive_toml(value: str) -> None:
    assert tomllib.loads(f"key = {toml_value(value)}")["key"] == value


def test_numbers_and_booleans() -> None:
    assert tomllib.loads(f"a = {toml_value(8000)}\nb = {toml_value(True)}") == {
        "a": 8000,
        "b": True,
    }


def test_notes_wrap_as_comments_and_warnings_say_check() -> None:
    text = comment(Note("start", "word " * 60 + "a\nsecond line", warning=True))
    lines = text.splitlines()
    assert lines[0].startswith("# CHECK: word")
    assert all(line.startswith("#") and len(line) <= WIDTH for line in lines)
    assert tomllib.loads(text) == {}


def test_vpc_octet_is_stable_and_in_range() -> None:
    assert vpc_octet("shop") == vpc_octet("shop")
    assert {vpc_octet(f"app-{n}") for n in range(50)} <= set(VPC_OCTETS)
    assert len({vpc_octet(f"app-{n}") for n in range(50)}) > 10

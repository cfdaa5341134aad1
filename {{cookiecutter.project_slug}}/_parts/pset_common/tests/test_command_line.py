"""The shared command-line pieces: one-line usage errors, numbers checked clearly."""

from __future__ import annotations

import argparse

import pytest

from {{ cookiecutter.project_slug }}.command_line import (
    EXIT_USAGE,
    ArgumentParser,
    at_least,
)


def test_a_usage_error_is_one_line_that_points_to_help(capsys):
    parser = ArgumentParser(prog="prog")
    parser.add_argument("--count", type=at_least(int, 1), required=True)
    with pytest.raises(SystemExit) as exited:
        parser.parse_args(["--count", "0"])
    assert exited.value.code == EXIT_USAGE == 2
    assert capsys.readouterr().err == (
        "prog: error: argument --count: must be a whole number >= 1, not '0' "
        "(see --help)\n"
    )


@pytest.mark.parametrize(
    ("kind", "lowest", "text", "value"),
    [
        (int, 1, "1", 1),
        (int, 0, "12", 12),
        (float, 0.1, "0.1", 0.1),
        (float, 0, "2", 2.0),
    ],
)
def test_a_number_at_least_the_lowest_is_taken(kind, lowest, text, value):
    number = at_least(kind, lowest)(text)
    assert number == value
    assert type(number) is kind


@pytest.mark.parametrize(
    ("kind", "lowest", "text", "message"),
    [
        (int, 1, "0", "must be a whole number >= 1, not '0'"),
        (int, 1, "many", "must be a whole number >= 1, not 'many'"),
        (int, 1, "1.5", "must be a whole number >= 1, not '1.5'"),
        (float, 0.1, "0.05", "must be a number >= 0.1, not '0.05'"),
        (float, 0, "-1", "must be a number >= 0, not '-1'"),
        (float, 0, "nan", "must be a number >= 0, not 'nan'"),
    ],
)
def test_a_wrong_number_is_refused_with_what_was_expected(kind, lowest, text, message):
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        at_least(kind, lowest)(text)
    assert str(refused.value) == message

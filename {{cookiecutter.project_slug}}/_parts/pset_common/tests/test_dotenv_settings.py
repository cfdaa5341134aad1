"""Where settings come from: the real environment over ./.env, blanks unset."""

from __future__ import annotations

import os

import pytest

from {{ cookiecutter.project_slug }} import (
    base_errors,
    errors,
)
from {{ cookiecutter.project_slug }}.dotenv_settings import (
    SettingSources,
    checked_text,
)


@pytest.fixture
def dotenv(tmp_path):
    path = tmp_path / ".env"
    path.write_text("NAME=from-dotenv\nONLY_IN_DOTENV=dotenv\nEMPTY=\n")
    return path


def test_the_real_environment_wins_over_dotenv(dotenv):
    sources = SettingSources({"NAME": "from-env"}, dotenv)
    assert sources.get("NAME") == "from-env"
    assert sources.get("ONLY_IN_DOTENV") == "dotenv"


def test_an_explicit_value_wins_over_everything(dotenv):
    sources = SettingSources({"NAME": "from-env"}, dotenv)
    assert sources.get("NAME", "explicit") == "explicit"


def test_blank_values_count_as_unset_and_values_are_stripped(dotenv):
    sources = SettingSources({"EMPTY": "  ", "PADDED": " value "}, dotenv)
    assert sources.get("NAME", "  ") == "from-dotenv"
    assert sources.get("EMPTY") is None
    assert sources.get("PADDED") == "value"
    assert sources.get("MISSING") is None


def test_dotenv_is_read_from_the_working_folder_without_touching_os_environ(
    dotenv, monkeypatch
):
    monkeypatch.chdir(dotenv.parent)
    monkeypatch.delenv("ONLY_IN_DOTENV", raising=False)
    assert SettingSources().get("ONLY_IN_DOTENV") == "dotenv"
    assert "ONLY_IN_DOTENV" not in os.environ


def test_a_missing_dotenv_is_no_source(tmp_path):
    assert SettingSources({}, tmp_path / "missing.env").get("NAME") is None


def test_a_value_that_is_not_utf8_is_refused_without_being_shown(tmp_path):
    sources = SettingSources({"SECRET": "p\udcffssword"}, tmp_path / "missing.env")
    with pytest.raises(errors.ConfigError) as refused:
        sources.get("SECRET")
    assert str(refused.value) == (
        "SECRET is not valid UTF-8 text: set it again in .env or in the environment"
    )
    assert checked_text("NAME", "ok") == "ok"


def test_the_pset_s_errors_are_the_shared_ones():
    """Code that catches the pset's ConfigError also catches the shared code's."""
    for name in ("PsetError", "ConfigError", "InputError"):
        assert getattr(errors, name) is getattr(base_errors, name)
    assert issubclass(errors.ConfigError, errors.PsetError)
    assert not errors.PsetError("x").retryable
    assert errors.InputError("what is wrong").brief == "what is wrong"

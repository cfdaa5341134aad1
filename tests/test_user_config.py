"""Remembered answers: a user config's default_context fills in the student's details.

This runs the cookiecutter command exactly as the README shows it.
"""

import subprocess
import sys
import tomllib

import pytest
import yaml
from conftest import TEMPLATE, run

REMEMBERED = {
    "full_name": "Ada Lovelace",
    "email": "ada@example.com",
    "github_id": "ada-l",
    "semester": "2031sp",
}


@pytest.fixture
def user_config(tmp_path):
    config = tmp_path / "cookiecutterrc"
    config.write_text(
        yaml.safe_dump(
            {
                "default_context": REMEMBERED,
                "cookiecutters_dir": str(tmp_path / "cookiecutters"),
                "replay_dir": str(tmp_path / "replay"),
            }
        ),
        encoding="utf-8",
    )
    return config


def cli(config, output, *options):
    """cookiecutter --config-file CONFIG -o OUTPUT [OPTIONS] TEMPLATE."""
    command = ["--config-file", config, "-o", output, *options, TEMPLATE]
    return [sys.executable, "-m", "cookiecutter", *command]


def bake_with_cli(config, output, *options):
    """Bake through the command line, from output's folder.

    Nothing can answer a question: a bake that asked one would fail.
    """
    command = cli(config, output, *options)
    return run(command, cwd=output.parent, stdin=subprocess.DEVNULL)


def test_bake_with_user_config_uses_the_remembered_answers(user_config, tmp_path):
    baked = bake_with_cli(user_config, tmp_path / "out", "--no-input")

    project = tmp_path / "out" / "pset_x"
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["authors"] == [
        {"name": "Ada Lovelace", "email": "ada@example.com"}
    ]
    assert (
        pyproject["project"]["urls"]["Repository"]
        == "https://github.com/ada-l/2031sp-pset-x-ada-l"
    )
    log = run(["git", "log", "--format=%an <%ae>"], cwd=project).stdout
    assert log.strip() == "Ada Lovelace <ada@example.com>"
    assert "placeholders" not in baked.stdout


def test_replay_bakes_the_same_answers_again(user_config, tmp_path):
    bake_with_cli(user_config, tmp_path / "first", "--no-input")
    bake_with_cli(user_config, tmp_path / "again", "--replay")

    for name in ("pyproject.toml", "README.md", "LICENSE"):
        first = (tmp_path / "first" / "pset_x" / name).read_text()
        assert (tmp_path / "again" / "pset_x" / name).read_text() == first


def test_replay_after_a_refused_bake_is_refused_again(user_config, tmp_path):
    """cookiecutter saves the answers before the hooks run, the refused ones too."""
    refusing = [*cli(user_config, tmp_path, "--no-input"), "github_id=grace hopper"]
    first = subprocess.run(refusing, capture_output=True, text=True, check=False)
    replayed = cli(user_config, tmp_path, "--replay")
    again = subprocess.run(replayed, capture_output=True, text=True, check=False)

    assert first.returncode != 0
    assert again.returncode != 0
    error = "error: github_id 'grace hopper' is not a GitHub user name;"
    assert error in first.stderr
    assert error in again.stderr
    assert list(tmp_path.glob("pset_x")) == []

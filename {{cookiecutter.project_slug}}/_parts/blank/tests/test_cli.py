import subprocess
import sys

import pytest

from {{ cookiecutter.project_slug }} import (
    __version__,
    cli,
)

PACKAGE = cli.__package__


def test_hello_greets_the_world_by_default(capsys):
    assert cli.main(["hello"]) == 0

    assert capsys.readouterr().out == "Hello, world!\n"


def test_hello_greets_the_name_it_is_given(capsys):
    assert cli.main(["hello", "Ada"]) == 0

    assert capsys.readouterr().out == "Hello, Ada!\n"


def test_version_is_the_package_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])

    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"python -m {PACKAGE} {__version__}\n"


@pytest.mark.parametrize("argv", [[], ["no-such-command"], ["hello", "Ada", "Bob"]])
def test_a_bad_command_line_is_one_error_line_and_exit_2(capsys, argv):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)

    assert exit_.value.code == 2
    errors = capsys.readouterr().err.splitlines()
    assert errors[-1].startswith(f"python -m {PACKAGE}: error: ")
    assert "Traceback" not in "\n".join(errors)


def test_python_dash_m_lists_the_commands_with_the_description():
    result = subprocess.run(
        [sys.executable, "-m", PACKAGE, "--help"],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "hello" in result.stdout
    assert "--version" in result.stdout

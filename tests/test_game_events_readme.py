"""The game_events README's one-machine path, typed from the README, prints what the
README shows.

The commands come from the baked README itself: the ```sh blocks of its section "On
one machine, in four commands" say what to type, and its ```console block what the
commands print, so this test fails as soon as the README and the behaviour part
ways. What the test changes in what the README types, and why:

- `python` is the python of a fresh venv, as it is in a student's activated one;
- serve gets `--port P` and load `--url http://127.0.0.1:P`, P a free port, because
  the machine running the tests may have a server of its own on the README's 5000;
- `< FILE` is standard input from FILE, as a shell would make it.

The commands run one right after the other, with no pause a person would make.

Everything runs in a copy of the bake, the folder a student types in, so its
./events and ./lake are fresh. The output compared is what a terminal shows: the
command's stdout and stderr together, a line rewritten in place (`\\r`) shown as
rewritten. Only what the README says differs from run to run is normalized.
"""

import re
import shlex
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import TOOL_FOLDERS, make_venv, run, without_cluster_settings
from ports import free_ports, wait_until_listening

SECTION = "### On one machine, in four commands"
HEADING = re.compile(r"(#+) ")
CODE_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
SERVE_TIMEOUT = 60.0
COMMAND_TIMEOUT = 300.0

# What the README says is random: the six hex digits in the players' names, and the
# numbers of the time, rate and latency lines.
PLAYER_NAME = re.compile(r"\bload-[0-9a-f]{6}-")
TIMED_LINE = re.compile(r"(Time taken|Requests/s|Latency):")
NUMBER = re.compile(r"\d[\d,]*(\.\d+)?")
# The progress line with a rate in it, which a terminal redraws in place but a pipe
# gets once every few seconds while the load runs; the final one has no rate.
PROGRESS_LINE = re.compile(r"Started: \d+ : .* events/s\b.*")


@dataclass
class Example:
    """A command of the console block, and the lines the README shows it print."""

    command: list[str]
    output: list[str] = field(default_factory=list)


def readme_section(readme: str, heading: str) -> str:
    """The text under a heading, up to the next heading of its level or above
    (a `#` line inside a code block is a comment, not a heading)."""
    level = len(heading.split()[0])
    lines = readme.splitlines(keepends=True)
    start = lines.index(heading + "\n") + 1
    in_code = False
    for end in range(start, len(lines)):
        if lines[end].startswith("```"):
            in_code = not in_code
        mark = None if in_code else HEADING.match(lines[end])
        if mark and len(mark[1]) <= level:
            break
    else:
        end = len(lines)
    return "".join(lines[start:end])


def code_blocks(text: str, language: str) -> list[str]:
    return [body for lang, body in CODE_BLOCK.findall(text) if lang == language]


def commands(script: str) -> list[list[str]]:
    """The commands of a shell script, one per line (`\\` continues one), each as
    its words, without comments."""
    lines = script.replace("\\\n", " ").splitlines()
    return [words for line in lines if (words := shlex.split(line, comments=True))]


def examples(console: str) -> list[Example]:
    """The console block's commands (after `$ `) and the output under each."""
    shown: list[Example] = []
    lines = iter(console.splitlines())
    for line in lines:
        if not line.startswith("$ "):
            shown[-1].output.append(line)
            continue
        typed = line.removeprefix("$ ")
        while typed.endswith("\\"):
            typed = typed[:-1] + next(lines)
        shown.append(Example(shlex.split(typed)))
    return shown


def as_shown(output: str) -> list[str]:
    """Output as a terminal leaves it: each `\\r` goes back to the line's start and
    writes over it. The load's periodic progress lines are left out."""
    shown = []
    for line in output.removesuffix("\n").split("\n"):
        screen = ""
        for piece in line.split("\r"):
            screen = piece + screen[len(piece) :]
        if not PROGRESS_LINE.fullmatch(screen.rstrip()):
            shown.append(screen.rstrip())
    return shown


def normalized(lines: list[str]) -> list[str]:
    """Lines with what the README says is random replaced by placeholders."""
    same = []
    for line in lines:
        line = PLAYER_NAME.sub("load-XXXXXX-", line)
        if TIMED_LINE.match(line):
            line = NUMBER.sub("N", line)
        same.append(line)
    return same


def as_run(command: list[str], python: Path, port: int | None = None) -> list[str]:
    """The README's `python ...` with the venv's python, and serve and load on
    the port."""
    assert command[0] == "python", command
    words = [str(python), *command[1:]]
    subcommand = command[3] if command[1:2] == ["-m"] and len(command) > 3 else None
    if subcommand in ("serve", "load"):
        assert port is not None, f"{subcommand} needs the port"
    if subcommand == "serve":
        words += ["--port", str(port)]
    elif subcommand == "load":
        words += ["--url", f"http://127.0.0.1:{port}"]
    return words


def type_in(
    command: list[str], python: Path, port: int, cwd: Path, env: dict[str, str]
) -> list[str]:
    """Run a command of the console block as typed; what the terminal shows."""
    words, stdin = command, None
    if "<" in command:
        at = command.index("<")
        words, (source,) = command[:at], command[at + 1 :]
        stdin = (cwd / source).open("rb")
    assert not {"|", ">", "&&", ";"} & set(words), f"a shell would run {command}"
    try:
        result = subprocess.run(
            as_run(words, python, port),
            cwd=cwd,
            env=env,
            stdin=stdin or subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,  # one terminal shows both
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
    finally:
        if stdin is not None:
            stdin.close()
    assert result.returncode == 0, (
        f"`{shlex.join(command)}` exited with {result.returncode}:\n{result.stdout}"
    )
    return as_shown(result.stdout)


def stop_with_ctrl_c(server: subprocess.Popen, timeout: float) -> None:
    """SIGINT, as Ctrl-C sends; a server that is not gone within `timeout` seconds
    is killed, and fails the test."""
    server.send_signal(signal.SIGINT)
    try:
        server.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
        pytest.fail(f"serve did not stop within {timeout:.0f} s of Ctrl-C")


def game_environment(project: Path) -> dict[str, str]:
    """This process's environment without any of the game's settings (the names
    its .env.example documents): the README's path runs on the defaults."""
    names = re.findall(
        r"^([A-Z_]+)=", (project / ".env.example").read_text(encoding="utf-8"), re.M
    )
    assert "EVENTS_DIR" in names, names
    environ = without_cluster_settings()
    for name in names:
        environ.pop(name, None)
    return environ


def test_readme_one_machine_path_prints_what_the_readme_shows(bake_once, tmp_path):
    result = bake_once({"pset": "game_events"})
    assert result.exit_code == 0, result.exception
    slug = result.project_path.name
    readme = (result.project_path / "README.md").read_text(encoding="utf-8")
    section = readme_section(readme, SECTION)
    # What the reader types; the curl lines are the API tried by hand, not the path.
    typed = [
        command
        for script in code_blocks(section, "sh")
        for command in commands(script)
        if command[0] == "python"
    ]
    (console,) = code_blocks(section, "console")
    shown = examples(console)
    install, serve, *path = typed
    assert install[1:4] == ["-m", "pip", "install"], install
    assert serve == ["python", "-m", slug, "serve"], serve
    # The console block shows the commands that the sh blocks say to type.
    assert [example.command for example in shown] == path

    project = tmp_path / slug
    shutil.copytree(
        result.project_path, project, ignore=shutil.ignore_patterns(*TOOL_FOLDERS)
    )
    assert not (project / "events").exists()
    assert not (project / "lake").exists()
    environ = game_environment(project)
    python = make_venv(tmp_path / "venv")
    run(as_run(install, python), cwd=project, env=environ)

    port = free_ports(1)[0]
    # A file, not a pipe: serve logs every request, and a full pipe would stall it.
    server_log = tmp_path / "serve.log"
    with server_log.open("wb") as log:
        server = subprocess.Popen(
            as_run(serve, python, port),
            cwd=project,
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_listening(f"127.0.0.1:{port}", server, SERVE_TIMEOUT, server_log)
        printed = []
        for example in shown:
            printed.append(type_in(example.command, python, port, project, environ))
    finally:
        stop_with_ctrl_c(server, SERVE_TIMEOUT)
    assert server.returncode == 0, server_log.read_text(encoding="utf-8")

    for example, output in zip(shown, printed, strict=True):
        assert normalized(output) == normalized(example.output), shlex.join(
            example.command
        )

"""An invalid answer stops the bake before anything is written, with one clear line.

After its error lines the bake prints one command that bakes again with every
other answer kept; pasted, with the refused answers typed anew, it bakes.
"""

import datetime
import os
import re
import shlex
import subprocess
import sys
import tomllib

import pytest
import yaml
from conftest import CONTEXT, TEMPLATE, as_typed, load_hook, run
from cookiecutter.exceptions import FailedHookException
from test_cruft import template_repository  # noqa: F401

TODAY = datetime.date.today()
CURRENT_TERM = (
    f"{TODAY.year}{'sp' if TODAY.month <= 5 else 'su' if TODAY.month <= 8 else 'fa'}"
)
LONG_NAME = "Pset " + "x" * 100
LONG_REPO = f"2030fa-pset-{'x' * 100}-octocat"

# (answers, the one line the bake must print to stderr)
INVALID = [
    (
        {"project_slug": "Pset-X"},
        "error: project_slug 'Pset-X' is not a lowercase module name; use lowercase "
        "letters, digits and _, starting with a letter, like pset_x",
    ),
    (
        {"project_slug": "1pset"},
        "error: project_slug '1pset' is not a lowercase module name; use lowercase "
        "letters, digits and _, starting with a letter, like pset_x",
    ),
    (
        {"project_slug": "_pset"},
        "error: project_slug '_pset' is not a lowercase module name; use lowercase "
        "letters, digits and _, starting with a letter, like pset_x",
    ),
    (
        {"project_slug": "class"},
        "error: project_slug 'class' is a Python keyword; "
        "choose another name, like pset_x",
    ),
    (
        {"project_slug": "match"},
        "error: project_slug 'match' is a Python keyword; "
        "choose another name, like pset_x",
    ),
    (
        {"project_slug": "json"},
        "error: project_slug 'json' is a standard-library module; "
        "choose a name that does not hide it, like pset_x",
    ),
    (
        {"project_slug": "aiohttp"},
        "error: project_slug 'aiohttp' is the import name of a dependency; "
        "choose a name that does not hide it, like pset_x",
    ),
    (
        {"project_slug": "dotenv"},
        "error: project_slug 'dotenv' is the import name of a dependency; "
        "choose a name that does not hide it, like pset_x",
    ),
    (
        {"github_id": ""},
        "error: github_id is empty; give your GitHub user name, like octocat",
    ),
    *(
        (
            {"github_id": github_id},
            f"error: github_id {github_id!r} is not a GitHub user name; use 1-39 "
            "letters, digits or single hyphens, not starting or ending with a hyphen",
        )
        for github_id in ("-octocat", "octocat-", "octo--cat", "octo_cat", "o" * 40)
    ),
    *(
        (
            {"semester": semester},
            f"error: semester {semester!r} is not a term; "
            f"use the year and sp, su or fa, like {CURRENT_TERM}",
        )
        for semester in ("2020fall", "fa2020", "20fa", "2020")
    ),
    *(
        (
            {"repo_name": repo_name},
            f"error: repo_name {repo_name!r} is not a GitHub repository name; use "
            "ASCII letters, digits, '.', '-' or '_' (not '.' or '..')",
        )
        for repo_name in ("my pset", "..", "pset-é")
    ),
    (
        {"repo_name": "r" * 101},
        f"error: repo_name {'r' * 101!r} is longer than 100 characters; "
        "shorten it to at most 100",
    ),
    *(
        (
            {"email": email},
            f"error: email {email!r} is not an email address; use one @, no spaces "
            "and a dot in the domain, like you@example.com",
        )
        for email in ("you", "you@example", "you @example.com", "a@b@example.com")
    ),
    (
        {"full_name": ""},
        "error: full_name is empty; give your name as it should appear in the licence",
    ),
    (
        {"full_name": "Zoë\nO'Brien"},
        'error: full_name "Zoë\\nO\'Brien" is not a single line; '
        "give your name on one line",
    ),
    (
        {"description": "  "},
        "error: description is empty; describe the project in one line",
    ),
    (
        {"description": "one\ntwo"},
        "error: description 'one\\ntwo' is not a single line; "
        "describe the project in one line",
    ),
    # A derived answer's problem names the answer the student typed.
    (
        {"project_name": "class"},
        "error: project_name 'class' gives the package name 'class', a Python "
        "keyword; choose another project_name, or set project_slug",
    ),
    (
        {"project_name": "JSON"},
        "error: project_name 'JSON' gives the package name 'json', a standard-library "
        "module; choose another project_name, or set project_slug",
    ),
    (
        {"project_name": "3 Body"},
        "error: project_name '3 Body' gives the package name '3_body', not a "
        "lowercase module name; choose another project_name, or set project_slug",
    ),
    (
        {"project_name": LONG_NAME, "semester": "2030fa", "github_id": "octocat"},
        f"error: project_name {LONG_NAME!r} gives the repository name {LONG_REPO!r}, "
        "longer than 100 characters; choose another project_name, or set repo_name",
    ),
    # A derived answer is not checked when what it is made from was refused.
    (
        {"github_id": "grace hopper"},
        "error: github_id 'grace hopper' is not a GitHub user name; use 1-39 "
        "letters, digits or single hyphens, not starting or ending with a hyphen",
    ),
    (
        {"project_name": "3\nBody"},
        "error: project_name '3\\nBody' is not a single line; "
        "give the name on one line",
    ),
]


def refusal(stderr: str) -> tuple[list[str], str]:
    """The error lines and the retry command of a refused bake, checking its shape.

    cookiecutter's own report of the stopped bake follows ours, and cruft's too.
    """
    lines = stderr.splitlines()
    end = next(number for number, line in enumerate(lines) if line.startswith("  "))
    *errors, hint = lines[:end]
    assert errors, stderr
    assert all(line.startswith("error: ") for line in errors), stderr
    assert hint.startswith("to bake again with your other answers kept, run this"), hint
    return errors, lines[end].strip()


@pytest.mark.parametrize(
    ("answers", "message"),
    INVALID,
    ids=[repr(answers) for answers, _ in INVALID],
)
def test_bake_with_invalid_answer_stops_with_one_line(
    cookies, capfd, tmp_path, answers, message
):
    result = cookies.bake(
        extra_context={name: as_typed(value) for name, value in answers.items()}
    )

    assert isinstance(result.exception, FailedHookException)
    assert result.exit_code != 0
    stderr = capfd.readouterr().err
    assert refusal(stderr)[0] == [message]
    assert "Traceback" not in stderr
    assert list((tmp_path / "cookies").glob("bake*/*")) == []


def test_bake_with_several_invalid_answers_names_each_once(cookies, capfd):
    result = cookies.bake(
        extra_context={"github_id": "", "semester": "fall", "email": "nobody"}
    )

    assert result.exit_code != 0
    stderr = capfd.readouterr().err
    errors, _ = refusal(stderr)
    assert [line.split(" ", 2)[1] for line in errors] == [
        "email",
        "github_id",
        "semester",
    ]
    assert all("; " in line for line in errors)
    assert "answer only email, github_id and semester (Enter keeps the rest)" in stderr


def test_bake_with_a_typed_package_name_names_it_not_the_project_name(cookies, capfd):
    cookies.bake(extra_context={"project_name": "Pset 3", "project_slug": "class"})

    errors, _ = refusal(capfd.readouterr().err)
    assert errors == [
        "error: project_slug 'class' is a Python keyword; "
        "choose another name, like pset_x"
    ]


def test_bake_with_a_typed_repo_name_checks_it_even_when_github_id_is_refused(
    cookies, capfd
):
    cookies.bake(extra_context={"github_id": "grace hopper", "repo_name": "my pset"})

    errors, _ = refusal(capfd.readouterr().err)
    assert [line.split(" ", 2)[1] for line in errors] == ["github_id", "repo_name"]


def test_every_derived_default_keeps_its_value_in_a_twin():
    """An accepted default is told from a typed answer by its ``__<answer>`` twin.

    The pre-generation hook's DERIVED names what each is made from, as the twin does.
    """
    pre_hook = load_hook("pre_gen_project")
    derived = {}
    for name, default in CONTEXT.items():
        if default == f"{{{{ cookiecutter.__{name} }}}}":
            made_from = re.findall(r"cookiecutter\.(\w+)", CONTEXT[f"__{name}"])
            derived[name] = sorted(made_from)
            twin_first = list(CONTEXT).index(f"__{name}") < list(CONTEXT).index(name)
            assert twin_first, f"__{name} must come before {name}"

    made_from_answers = {name for name, made_from in derived.items() if made_from}
    assert made_from_answers == set(pre_hook.DERIVED)
    for name, (_, sources) in pre_hook.DERIVED.items():
        assert sorted(sources) == derived[name], name


# Answers as a student types them, a line each, in the order of the questions; the
# ones left out are the defaults (Enter). Quotes, non-ASCII letters and Jinja braces
# must come back exactly as typed.
TYPED = {
    "full_name": "Zoë O'Brien",
    "github_id": "grace hopper",
    "project_name": "class",
    "description": 'Logs {{ x }} "quoted" {% y %}',
    "ci": "2",  # Travis CI
    "quality": "2",  # none
    "license": "4",  # none
}
FIXES = {"github_id": "zoe-ob", "project_name": "Pset 3"}


def typed_lines(answers: dict) -> str:
    questions = [name for name in CONTEXT if not name.startswith("_")]
    return "".join(f"{answers.get(name, '')}\n" for name in questions)


@pytest.fixture
def shell_env(tmp_path) -> dict:
    """The student's shell: cookiecutter on the PATH, a user config of its own."""
    config = tmp_path / "cookiecutterrc"
    config.write_text(
        yaml.safe_dump(
            {
                "cookiecutters_dir": str(tmp_path / "cookiecutters"),
                "replay_dir": str(tmp_path / "replay"),
            }
        ),
        encoding="utf-8",
    )
    path = f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"
    return os.environ | {"PATH": path, "COOKIECUTTER_CONFIG": str(config)}


@pytest.mark.parametrize("tool", ["cookiecutter", "cruft create"])
def test_refused_bake_prints_a_command_that_bakes_with_only_the_fixes_typed(
    tool, request, tmp_path, shell_env
):
    """The retry command is for the tool that baked: cruft keeps its link."""
    if tool == "cookiecutter":
        template = TEMPLATE
    else:
        template = request.getfixturevalue("template_repository")
    refused = subprocess.run(
        [*tool.split(), template],
        cwd=tmp_path,
        input=typed_lines(TYPED),
        capture_output=True,
        text=True,
        env=shell_env,
        check=False,
    )
    assert refused.returncode != 0
    errors, command = refusal(refused.stderr)
    assert command.startswith(f"{tool} ")
    assert [line.split(" ", 2)[1] for line in errors] == ["github_id", "project_name"]
    assert "answer only github_id and project_name" in refused.stderr

    run(["sh", "-c", command], cwd=tmp_path, input=typed_lines(FIXES), env=shell_env)

    project = tmp_path / "pset_3"
    metadata = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    assert metadata["authors"][0]["name"] == TYPED["full_name"]
    assert metadata["description"] == TYPED["description"]
    assert metadata["urls"]["Repository"] == (
        f"https://github.com/zoe-ob/{CURRENT_TERM}-pset-3-zoe-ob"
    )
    assert "license" not in metadata
    assert (project / ".travis.yml").is_file()
    assert not (project / ".github").exists()
    assert not (project / ".codeclimate.yml").exists()
    assert not (project / ".qlty").exists()
    assert (project / ".cruft.json").exists() == (tool == "cruft create")


def test_retry_command_keeps_typed_answers_and_leaves_out_accepted_defaults():
    pre_hook = load_hook("pre_gen_project")
    answers = {
        "full_name": "Zoë O'Brien",
        "github_id": "grace hopper",
        "__semester": "2030fa",
        "semester": "2030fa",
        "__project_slug": "pset_3",
        "project_slug": "pset_3",
        "__repo_name": "2030fa-pset-3-grace hopper",
        "repo_name": "2030fa-pset-3-grace hopper",
        "description": "{{ x }}",
        "quality": "none",
        "_template": "gh:some-course/yopy",
        "_output_dir": "/home/zoe/psets",
        "_checkout": "fall",
    }

    command = shlex.split(pre_hook.retry_command(answers, ["github_id"]))

    assert command == [
        "cookiecutter",
        "gh:some-course/yopy",
        "--checkout",
        "fall",
        "--output-dir",
        "/home/zoe/psets",
        "full_name=Zoë O'Brien",
        "description={% raw %}{{ x }}{% endraw %}",
        "quality=none",
    ]

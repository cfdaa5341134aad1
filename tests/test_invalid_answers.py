"""An invalid answer stops the bake before anything is written, with one clear line."""

import pytest
from conftest import as_typed
from cookiecutter.exceptions import FailedHookException

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
            "use the year and sp, su or fa, like 2020fa",
        )
        for semester in ("2020fall", "fa2020", "20fa", "2020")
    ),
    *(
        (
            {"repo_name": repo_name},
            f"error: repo_name {repo_name!r} is not a GitHub repository name; use at "
            "most 100 ASCII letters, digits, '.', '-' or '_' (not '.' or '..')",
        )
        for repo_name in ("my pset", "..", "r" * 101, "pset-é")
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
]


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
    assert stderr.splitlines() == [message]
    assert "Traceback" not in stderr
    assert list((tmp_path / "cookies").glob("bake*/*")) == []


def test_bake_with_several_invalid_answers_names_each_once(cookies, capfd):
    result = cookies.bake(
        extra_context={"github_id": "", "semester": "fall", "email": "nobody"}
    )

    assert result.exit_code != 0
    lines = capfd.readouterr().err.splitlines()
    named = [line.split(" ", 2)[1] for line in lines]
    assert named == ["email", "github_id", "semester"]
    assert all(line.startswith("error: ") and "; " in line for line in lines)

"""A bake under unusual names holds no default name: nothing stale survives a rename.

The package is copied without rendering, so a literal name in it stays as it was
written; names that follow the answers must come from the package at run time.
Every file of the bake is searched, its paths and its first commit too, and so is
what the hooks print.
"""

import re
from pathlib import Path

import pytest
from conftest import CONTEXT, PROJECT_TEMPLATE, files_in, options, run

# Answers that share no word with the defaults.
UNUSUAL = {
    "full_name": "Quinn Zeller",
    "email": "quinn@zeller.example.org",
    "github_id": "zed-q",
    "semester": "2031su",
    "project_name": "Pset Zeta 9",
}
# Every optional file on, so that each one is searched.
EVERYTHING_ON = {"ci": "both", "quality": "qlty", "license": "MIT"}


def bakes_of_every_choice() -> list:
    """One bake for each value of each choice option, a pset among them if any."""
    first = {name: values[0] for name, values in options().items()}
    bakes: dict[str, dict] = {}
    for name, values in options().items():
        for value in values if isinstance(values[0], str) else []:
            answers = first | UNUSUAL | EVERYTHING_ON | {name: value}
            if answers not in bakes.values():
                bakes[f"{name}={value}"] = answers
    return [pytest.param(answers, id=id_) for id_, answers in bakes.items()]


def default_names(defaults: dict) -> re.Pattern:
    """The names a default bake gives, as one pattern.

    The project name matches in any case and with any separator between its
    words, or none (Pset X, pset_x, pset-x, PSET_X, PsetX); the other answers match
    as they are.
    """
    words = re.findall(r"[a-z0-9]+", defaults["project_name"].lower())
    project = r"(?<![a-z0-9])" + r"[\W_]?".join(words) + r"(?![a-z0-9])"
    literals = [
        re.escape(defaults[name])
        for name in ("full_name", "email", "github_id", "semester", "repo_name")
    ]
    return re.compile("|".join([f"(?i:{project})", *literals]))


def stale_lines(pattern: re.Pattern, files: list[tuple[str, Path]]) -> list[str]:
    """Each name that names a default, and each line that does, as name:line: text.

    `files` pairs the name a file is known by with the file to read.
    """
    hits = [f"{name}: (the path)" for name, _ in sorted(files) if pattern.search(name)]
    for name, path in sorted(files):
        text = path.read_text(encoding="utf-8")
        for number, line in enumerate(text.splitlines(), start=1):
            if pattern.search(line):
                hits.append(f"{name}:{number}: {line.strip()}")
    return hits


@pytest.fixture(scope="module")
def defaults_of(bake_once) -> dict[str, dict]:
    """The answers of each pset's default bake."""
    contexts = {}
    for pset in CONTEXT["pset"]:
        result = bake_once({"pset": pset})
        assert result.exit_code == 0, result.exception
        contexts[pset] = result.context
    return contexts


@pytest.fixture(scope="module")
def defaults(defaults_of) -> dict:
    return defaults_of[CONTEXT["pset"][0]]


@pytest.mark.parametrize("answers", bakes_of_every_choice())
def test_bake_with_unusual_names_names_no_default(cookies, capfd, defaults_of, answers):
    result = cookies.bake(extra_context=answers)
    output = capfd.readouterr()

    assert result.exit_code == 0, result.exception
    project = result.project_path
    assert project.name == "pset_zeta_9"
    pattern = default_names(defaults_of[answers["pset"]])
    hits = stale_lines(pattern, [(name, project / name) for name in files_in(project)])
    log = run(["git", "log", "--format=%an%n%ae%n%B"], cwd=project).stdout
    said = {"first commit": log, "hook output": output.out + output.err}
    for where, text in said.items():
        lines = text.splitlines()
        hits += [f"{where}: {line}" for line in lines if pattern.search(line)]
    assert hits == [], "default names in a bake of Pset Zeta 9:\n" + "\n".join(hits)


@pytest.mark.parametrize("pset", CONTEXT["pset"])
def test_template_files_spell_no_default_name(defaults_of, pset):
    """Also the branches of {% if %} that no bake above takes.

    The folders of the parts are named after their psets, not after a project, and
    no bake has them.
    """
    pattern = default_names(defaults_of[pset])
    files = [
        (re.sub(r"^_parts/[^/]+/", "", name), PROJECT_TEMPLATE / name)
        for name in files_in(PROJECT_TEMPLATE)
    ]
    hits = stale_lines(pattern, files)

    assert hits == [], "default names written in the template:\n" + "\n".join(hits)


@pytest.mark.parametrize(
    "line",
    [
        'DEFAULT_INDEX = __package__ or "pset_x"',
        "    python -m pset_x init",
        "pip install pset-x",
        "PSET_X_HOST=",
        "class PsetX:",
        "# Pset X",
        "https://github.com/your-github-id/repo",
        "Copyright (c) Your Name",
        "mailto:you@example.com",
    ],
)
def test_default_names_match_every_spelling(defaults, line):
    assert default_names(defaults).search(line)


@pytest.mark.parametrize(
    "line", ["import pset_zeta_9", "pset-xml", "upset_x", "Pset Zeta 9", "zed-q"]
)
def test_default_names_leave_other_names_alone(defaults, line):
    assert not default_names(defaults).search(line)

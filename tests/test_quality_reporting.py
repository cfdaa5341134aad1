"""Quality reporting goes to Qlty Cloud, never to CodeClimate's shut-down service.

CodeClimate's API was shut down on 2025-07-18; Qlty Cloud replaced it. A bake keeps
the course's `.codeclimate.yml` and rates the same checks through `.qlty/qlty.toml`.
"""

import tomllib

import pytest
import yaml
from conftest import PSETS, files_in

# What only the shut-down service used: its reporter, its secret, its site, and the
# GitHub Action that drove the reporter.
SHUT_DOWN = ["cc-test-reporter", "CC_TEST_REPORTER_ID", "codeclimate.com"]
SHUT_DOWN += ["codeclimate-action"]

# CodeClimate's checks and Qlty's smells, as `qlty config migrate` converts them:
# the smell each check becomes and the factor on its threshold (Qlty rounds down).
# method-count and method-lines have no counterpart.
SMELL_OF_CHECK = {
    "argument-count": ("function_parameters", 1.0),
    "complex-logic": ("boolean_logic", 1.0),
    "file-lines": ("file_complexity", 0.22),
    "method-complexity": ("function_complexity", 1.1),
    "nested-control-flow": ("nested_control_flow", 1.0),
    "return-statements": ("return_statements", 1.0),
}
WITHOUT_COUNTERPART = {"method-count", "method-lines"}
DUPLICATION_CHECKS = {
    "similar-code": "similar_code",
    "identical-code": "identical_code",
}


def test_no_bake_names_the_shut_down_codeclimate_service(every_bake):
    """Every pset with every quality and CI choice, and every other option."""
    seen = set()
    found = []
    for project in every_bake:
        for name in sorted(files_in(project)):
            content = (project / name).read_bytes()
            if content in seen:
                continue
            seen.add(content)
            found += [
                f"{project.parent.name}/{name}: {word}"
                for word in SHUT_DOWN
                if word.encode() in content
            ]
    assert found == []


@pytest.fixture(scope="module", params=list(PSETS))
def quality_configs(request, bake_once) -> tuple[dict, dict]:
    result = bake_once({"pset": request.param, "quality": "qlty"})
    assert result.exit_code == 0, result.exception
    project = result.project_path
    codeclimate = yaml.safe_load((project / ".codeclimate.yml").read_text())
    qlty = tomllib.loads((project / ".qlty/qlty.toml").read_text())
    return codeclimate, qlty


def test_qlty_rates_the_checks_that_codeclimate_rates(quality_configs):
    codeclimate, qlty = quality_configs
    checks, smells = codeclimate["checks"], qlty["smells"]

    assert set(checks) == set(SMELL_OF_CHECK) | WITHOUT_COUNTERPART | set(
        DUPLICATION_CHECKS
    )
    for check, (smell, factor) in SMELL_OF_CHECK.items():
        threshold = int(checks[check]["config"]["threshold"] * factor)
        assert smells[smell] == {"threshold": threshold}, check
    for check, smell in DUPLICATION_CHECKS.items():
        assert smells[smell]["enabled"] is checks[check]["enabled"], check
    assert set(smells) == {smell for smell, _ in SMELL_OF_CHECK.values()} | set(
        DUPLICATION_CHECKS.values()
    )


def test_qlty_leaves_out_what_codeclimate_leaves_out(quality_configs):
    codeclimate, qlty = quality_configs

    # CodeClimate's folder patterns are Qlty's globs of everything under them.
    folders = [
        pattern.rstrip("/") + "/**" for pattern in codeclimate["exclude_patterns"]
    ]
    assert qlty["exclude_patterns"] == folders


def test_qlty_uses_the_default_plugin_source_and_the_project_linter(quality_configs):
    _, qlty = quality_configs

    assert qlty["config_version"] == "0"
    assert qlty["source"] == [{"name": "default", "default": True}]
    assert qlty["plugin"] == [{"name": "ruff"}]


def test_bake_without_quality_reporting_has_no_quality_files(bake_once):
    result = bake_once({"quality": "none"})

    assert result.exit_code == 0, result.exception
    assert not (result.project_path / ".codeclimate.yml").exists()
    assert not (result.project_path / ".qlty").exists()
    readme = (result.project_path / "README.md").read_text()
    assert "qlty" not in readme.lower()

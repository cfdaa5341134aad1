"""The baked project installs from its own pyproject.toml and its test suite passes.

These tests build fresh virtual environments and install from the package index, so
they take a while; each venv is built once per session and shared.
"""

from conftest import SPECIAL, as_typed, make_venv, run, without_cluster_settings


def install_and_run_tests(venv_python, project):
    run([venv_python, "-m", "pip", "install", "--quiet", "-e", ".[test]"], cwd=project)
    command = [venv_python, "-m", "pytest", "-p", "no:cacheprovider"]
    # Without a cluster: the integration tests must skip, whatever the shell says.
    return run(command, cwd=project, env=without_cluster_settings())


def test_bake_and_run_tests(cookies, test_venv):
    result = cookies.bake()
    assert result.exit_code == 0, result.exception

    tests = install_and_run_tests(test_venv, result.project_path)

    assert " passed" in tests.stdout.splitlines()[-1]
    # No cluster here: only the integration tests skip, and they say what they need.
    skipped = [line for line in tests.stdout.splitlines() if "SKIPPED" in line]
    assert skipped
    for line in skipped:
        assert " tests/test_integration.py:" in line
        assert line.endswith(
            "set ELASTIC_HOST (and credentials) to run the integration tests against "
            "a real Elasticsearch"
        )


def test_bake_with_special_chars_and_run_tests(cookies, test_venv):
    result = cookies.bake(
        extra_context={name: as_typed(text) for name, text in SPECIAL.items()}
    )
    assert result.exit_code == 0, result.exception

    tests = install_and_run_tests(test_venv, result.project_path)

    assert " passed" in tests.stdout.splitlines()[-1]


def test_bake_installs_and_runs_without_test_extras(cookies, runtime_venv, tmp_path):
    result = cookies.bake()
    assert result.exit_code == 0, result.exception

    run([runtime_venv, "-m", "pip", "install", "--quiet", "."], cwd=result.project_path)
    # Run from elsewhere, so the package comes from the installed wheel.
    usage = run([runtime_venv, "-m", "pset_x", "--help"], cwd=tmp_path)

    assert "generate" in usage.stdout
    assert "init" in usage.stdout
    assert "query" in usage.stdout


def test_bake_of_blank_pset_and_run_tests(cookies, tmp_path):
    result = cookies.bake(extra_context={"pset": "blank", "project_name": "Pset 4"})
    assert result.exit_code == 0, result.exception

    # A venv of its own: what another pset's suite installed must not help or hurt.
    tests = install_and_run_tests(make_venv(tmp_path / "venv"), result.project_path)

    last = tests.stdout.splitlines()[-1]
    assert " passed" in last
    assert "skipped" not in last

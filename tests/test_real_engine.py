"""The baked project's integration tests pass against a real search engine.

The baked GitHub workflow runs tests/test_integration.py against Elasticsearch 8;
here it runs against the session's real OpenSearch 2.19 node (opensearch_node.py),
so that a template change that breaks them fails the template's own suite. It costs
the session's default bake, one install and the one node of the session.
"""

import re

from conftest import run, without_cluster_settings

INTEGRATION = "tests/test_integration.py"
# The tests that file defines: each must run and pass, none skipped or deselected.
INTEGRATION_TESTS = 14
OUTCOME = re.compile(
    r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected)"
)


def test_bake_and_run_integration_tests_on_a_real_node(
    bake_once, test_venv, opensearch
):
    result = bake_once({})
    assert result.exit_code == 0, result.exception
    project = result.project_path
    run([test_venv, "-m", "pip", "install", "--quiet", "-e", ".[test]"], cwd=project)
    # Only the node: no ELASTIC_* of the developer's shell (credentials, an index).
    environ = without_cluster_settings()
    environ["ELASTIC_HOST"] = opensearch.url

    tests = run(
        [test_venv, "-m", "pytest", "-p", "no:cacheprovider", "-v", INTEGRATION],
        cwd=project,
        env=environ,
    )

    summary = tests.stdout.strip().splitlines()[-1]
    outcomes = {kind: int(number) for number, kind in OUTCOME.findall(summary)}
    assert outcomes == {"passed": INTEGRATION_TESTS}, (
        f"expected {INTEGRATION_TESTS} passed, got {summary!r}\n{tests.stdout}"
    )

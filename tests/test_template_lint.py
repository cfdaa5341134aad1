"""The template's own Python (hooks, Jinja extension, these tests) passes ruff."""

from conftest import TEMPLATE, ruff_passes


def test_template_code_passes_ruff():
    ruff_passes(["."], cwd=TEMPLATE)

"""Whatever a person types as a name or description gives a valid project.

Quotes, backslashes, accents, emoji and Jinja's own braces must reach TOML, YAML,
JSON and Markdown exactly as typed, without breaking any file; a long name must
still give code that passes ruff. Every pset of cookiecutter.json's `_psets` is
baked with such answers.
"""

import json
import tomllib

import pytest
import yaml
from conftest import PSETS, SPECIAL, as_typed, ruff_passes, run

LONG_NAME = "Pset 12: Streaming Web Logs into Elasticsearch"


@pytest.fixture(scope="module", params=list(PSETS))
def special(request, bake_once):
    typed = {name: as_typed(text) for name, text in SPECIAL.items()}
    result = bake_once({"pset": request.param, **typed})
    assert result.exit_code == 0, result.exception
    return result


def test_bake_with_special_chars_keeps_the_typed_text(special):
    for name, text in SPECIAL.items():
        assert special.context[name] == text
    assert special.context["project_slug"] == "pset_x_zoe_s_logs"
    assert special.project_path.name == "pset_x_zoe_s_logs"


def test_bake_with_special_chars_writes_them_exactly_into_toml(special):
    pyproject = tomllib.loads((special.project_path / "pyproject.toml").read_text())
    project = pyproject["project"]

    assert project["description"] == SPECIAL["description"]
    assert project["authors"] == [
        {"name": SPECIAL["full_name"], "email": SPECIAL["email"]}
    ]
    tomllib.loads((special.project_path / "Pipfile").read_text())


def test_bake_with_special_chars_writes_yaml_and_json_that_parse(special):
    for path in special.project_path.glob("*.yml"):
        yaml.safe_load(path.read_text(encoding="utf-8"))
    for path in special.project_path.glob("*.json"):
        json.loads(path.read_text(encoding="utf-8"))


def test_bake_with_special_chars_writes_them_into_markdown_and_licence(special):
    readme = (special.project_path / "README.md").read_text(encoding="utf-8")
    licence = (special.project_path / "LICENSE").read_text(encoding="utf-8")

    assert readme.startswith(f"# {SPECIAL['project_name']}\n")
    assert f"\n{SPECIAL['description']}\n" in readme
    assert f" {SPECIAL['full_name']}\n" in licence


def test_bake_with_special_chars_compiles_every_python_file(special):
    for path in special.project_path.rglob("*.py"):
        compile(path.read_text(encoding="utf-8"), str(path), "exec")


def test_bake_with_special_chars_passes_ruff(special):
    ruff_passes([special.project_path], cwd=special.project_path)


def test_bake_with_special_chars_commits_as_the_typed_author(special):
    log = run(["git", "log", "--format=%an%n%ae%n%s"], cwd=special.project_path)

    name, email, subject = log.stdout.splitlines()
    assert (name, email) == (SPECIAL["full_name"], SPECIAL["email"])
    assert subject == f"Start {SPECIAL['project_name']} from the yopy template"


@pytest.mark.parametrize("pset", list(PSETS))
def test_bake_with_a_long_name_passes_ruff(bake_once, pset):
    """The slug lands in imports and test lines: a long one must still fit in 88."""
    result = bake_once({"pset": pset, "project_name": LONG_NAME})
    assert result.exit_code == 0, result.exception
    assert len(result.context["project_slug"]) == 45

    ruff_passes([result.project_path], cwd=result.project_path)

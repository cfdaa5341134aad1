"""What the template tests share: the template's options, bakes, commands, venvs."""

import importlib.util
import itertools
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from kafka_broker import kafka  # noqa: F401
from opensearch_node import opensearch  # noqa: F401

TEMPLATE = Path(__file__).resolve().parent.parent
CONTEXT = json.loads((TEMPLATE / "cookiecutter.json").read_text(encoding="utf-8"))
PROJECT_TEMPLATE = TEMPLATE / "{{cookiecutter.project_slug}}"
SLUG_FOLDER = "{{cookiecutter.project_slug}}"
# The parts that psets are made of (see post_gen_project.lay_out_pset).
PARTS = PROJECT_TEMPLATE / "_parts"
PSETS = CONTEXT["_psets"]

# Folders that git and tools make in a working tree. A clone of the template has
# none, so the tests ignore them in the template and in bakes alike.
TOOL_FOLDERS = {".git", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis"}

# Answers full of what breaks naive templates: quotes, backslashes, non-ASCII
# letters, emoji outside the Basic Multilingual Plane, and Jinja's own braces.
SPECIAL = {
    "full_name": 'Zoë O\'Brien-Łukasz "Zed" \\ 🦊',
    "email": "zoe.obrien+pset@example.com",
    "project_name": 'Pset X: Zoë\'s "logs" \\ 🚀 {{ }} {% %}',
    "description": "Logs \"quoted\", 'single', back\\slash, {{ x }}, {% y %}, ü 🚀",
}


def options() -> dict[str, list]:
    """Every choice and yes/no option of cookiecutter.json, with all its values."""
    return {
        name: [True, False] if isinstance(default, bool) else default
        for name, default in CONTEXT.items()
        if not name.startswith("_") and isinstance(default, bool | list)
    }


def every_combination() -> list[dict]:
    values = options()
    return [
        dict(zip(values, combination, strict=True))
        for combination in itertools.product(*values.values())
    ]


def combination_id(answers: dict) -> str:
    """Short readable test id, like pset_x-py3.11-github-qlty-MIT-git_init."""
    parts = []
    for name, value in answers.items():
        if isinstance(value, bool):
            parts.append(name if value else f"no_{name}")
        elif name == "python_version":
            parts.append(f"py{value}")
        else:
            parts.append(f"{name}={value}" if value == "none" else value)
    return "-".join(parts)


def files_in(root: Path) -> set[str]:
    """Every file under root as a relative path, without the tools' folders."""
    return {
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.is_file() and not TOOL_FOLDERS & set(path.relative_to(root).parts)
    }


def skeleton_files() -> set[str]:
    """The template's files that every pset shares, as template paths."""
    parts = PARTS.relative_to(PROJECT_TEMPLATE).as_posix() + "/"
    return {path for path in files_in(PROJECT_TEMPLATE) if not path.startswith(parts)}


def pset_files(answers: dict) -> dict[str, Path]:
    """Each file a bake of these answers starts with, before the options remove
    any: its path in the bake, and the template file it comes from.

    The skeleton's files, with the pset's parts laid over them in order.
    """
    sources = {path: PROJECT_TEMPLATE / path for path in skeleton_files()}
    for part in PSETS[answers["pset"]]["parts"]:
        sources |= {path: PARTS / part / path for path in files_in(PARTS / part)}
    slug = answers["project_slug"]
    return {path.replace(SLUG_FOLDER, slug): source for path, source in sources.items()}


def expected_files(answers: dict) -> set[str]:
    """The files a bake of these answers holds: its pset's, less those of the
    options it turns off, as the post-generation hook's table says."""
    features = load_hook("post_gen_project").optional_files(answers)
    switched_off = {
        path for is_on, paths in features.values() if not is_on for path in paths
    }
    return set(pset_files(answers)) - switched_off


def load_hook(name: str) -> ModuleType:
    """Import a hook as a module: its functions work on an answers dict."""
    path = TEMPLATE / "hooks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def without_cluster_settings() -> dict[str, str]:
    """This process's environment without ELASTIC_*: no cluster, credentials or
    index of the developer's shell reaches a baked project run by a test."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("ELASTIC_")
    }


def run(command: list, cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    """Run a command that must succeed; on failure the message shows its output."""
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        **kwargs,
    )
    assert result.returncode == 0, (
        f"`{shlex.join(str(part) for part in command)}` in {cwd} exited with "
        f"{result.returncode}\n--- stdout ---\n{result.stdout}"
        f"\n--- stderr ---\n{result.stderr}"
    )
    return result


def ruff_passes(paths: list, cwd: Path) -> None:
    """ruff check and ruff format --check, each file under its nearest config."""
    for command in (["check"], ["format", "--check"]):
        run([sys.executable, "-m", "ruff", *command, "--no-cache", *paths], cwd=cwd)


def as_typed(text: str) -> str:
    """Protect text from Jinja: with no prompts, cookiecutter renders extra_context."""
    return "{% raw %}" + text + "{% endraw %}"


@pytest.fixture(scope="session")
def bake_once(cookies_session) -> Callable:
    """Bake each set of answers once per session; later calls get the same result."""
    results = {}

    def bake(answers: dict):
        key = json.dumps(answers, sort_keys=True)
        if key not in results:
            results[key] = cookies_session.bake(extra_context=answers)
        return results[key]

    return bake


@pytest.fixture(scope="session")
def every_bake(bake_once) -> list[Path]:
    """The project of every combination of options, each baked once per session."""
    projects = []
    for answers in every_combination():
        result = bake_once(answers)
        assert result.exit_code == 0, result.exception
        projects.append(result.project_path)
    return projects


def make_venv(path: Path) -> Path:
    """A fresh virtual environment with pip; returns its python."""
    run([sys.executable, "-m", "venv", path], cwd=path.parent)
    return path / ("Scripts" if sys.platform == "win32" else "bin") / "python"


@pytest.fixture(scope="session")
def test_venv(tmp_path_factory) -> Path:
    """One fresh venv for running baked test suites (each bake installs itself)."""
    return make_venv(tmp_path_factory.mktemp("venv") / "test")


@pytest.fixture(scope="session")
def runtime_venv(tmp_path_factory) -> Path:
    """A fresh venv for installing a bake without its test extra."""
    return make_venv(tmp_path_factory.mktemp("venv") / "runtime")

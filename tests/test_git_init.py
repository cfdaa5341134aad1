"""git_init: a repository with one commit by the student, or none; then the next steps.

The next steps name a GitHub repository only under a real github_id, and a bake with
a placeholder for the student says so in one line.
"""

import yaml
from conftest import CONTEXT, as_typed, load_hook, run

AUTHOR = {"full_name": "Zoë O'Brien", "email": "zoe@example.com"}
AUTHOR_TYPED = {name: as_typed(value) for name, value in AUTHOR.items()}


def test_bake_with_git_init_commits_everything_as_the_student(bake_once):
    result = bake_once(AUTHOR_TYPED)
    project = result.project_path

    log = run(["git", "log", "--format=%an%n%ae%n%cn%n%ce"], cwd=project).stdout
    assert log.splitlines() == [AUTHOR["full_name"], AUTHOR["email"]] * 2
    branch = run(["git", "branch", "--show-current"], cwd=project).stdout
    assert branch.strip() == "main"
    assert run(["git", "status", "--porcelain"], cwd=project).stdout == ""


def test_bake_without_git_init_has_no_repository(bake_once):
    result = bake_once({"git_init": False})

    assert result.exit_code == 0, result.exception
    assert not (result.project_path / ".git").exists()


def test_bake_without_git_installed_warns_and_still_succeeds(
    cookies, capfd, monkeypatch, tmp_path
):
    monkeypatch.setenv("PATH", str(tmp_path))  # a directory without git

    result = cookies.bake()

    assert result.exit_code == 0, result.exception
    assert not (result.project_path / ".git").exists()
    assert capfd.readouterr().err.splitlines() == [
        "warning: git is not installed; skipped creating the repository"
    ]


def test_bake_with_failing_git_warns_and_still_succeeds(
    cookies, capfd, monkeypatch, tmp_path
):
    fake_git = tmp_path / "bin" / "git"
    fake_git.parent.mkdir()
    fake_git.write_text("#!/bin/sh\necho 'fatal: not today' >&2\nexit 128\n")
    fake_git.chmod(0o755)
    monkeypatch.setenv("PATH", str(fake_git.parent))

    result = cookies.bake()

    assert result.exit_code == 0, result.exception
    assert (result.project_path / "pyproject.toml").is_file()
    assert capfd.readouterr().err.splitlines() == [
        "warning: git init failed (fatal: not today); skipped creating the repository"
    ]


def test_bake_prints_the_next_steps(cookies, capfd):
    result = cookies.bake(extra_context={"github_id": "zoe-ob"})

    out = capfd.readouterr().out
    assert result.exit_code == 0, result.exception
    repo = f"zoe-ob/{result.context['repo_name']}"
    for step in (
        f"cd {result.project_path}",
        "python -m pip install -e '.[test]'",
        "cp .env.example .env",
        "python -m pytest",
        "python -m pset_x init",
        f"create the GitHub repository {repo}",
        f"git remote add origin https://github.com/{repo}.git",
        "git push -u origin main",
    ):
        assert step in out


def note_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("note: ")]


def test_bake_with_placeholders_says_so_and_names_no_repository(cookies, capfd):
    result = cookies.bake()

    out = capfd.readouterr().out
    assert result.exit_code == 0, result.exception
    [note] = note_lines(out)
    assert note.startswith(
        "note: placeholders in this bake: full_name, email, github_id;"
    )
    assert "~/.cookiecutterrc" in note
    setting = yaml.safe_load(note.split(", like ", 1)[1])
    assert set(setting["default_context"]) == {"full_name", "email", "github_id"}
    assert "your-github-id" not in out
    assert "create the GitHub repository" not in out
    assert "git remote" not in out
    assert "bake again with your own github_id" in out


def test_bake_with_a_placeholder_name_still_names_the_repository(cookies, capfd):
    result = cookies.bake(extra_context={"github_id": "zoe-ob"})

    out = capfd.readouterr().out
    assert result.exit_code == 0, result.exception
    [note] = note_lines(out)
    assert note.startswith("note: placeholders in this bake: full_name, email;")
    assert "create the GitHub repository zoe-ob/" in out


def test_bake_with_the_students_own_answers_has_no_note(bake_once, capfd):
    result = bake_once({**AUTHOR_TYPED, "github_id": "zoe-ob"})

    assert result.exit_code == 0, result.exception
    assert note_lines(capfd.readouterr().out) == []


def test_placeholders_are_the_defaults_of_cookiecutter_json():
    post_hook = load_hook("post_gen_project")

    for name, (placeholder, example) in post_hook.PLACEHOLDERS.items():
        assert CONTEXT[name] == placeholder, name
        assert example != placeholder, name

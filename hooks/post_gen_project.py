"""Finish the new project: lay out its pset, drop what the answers turned off, start
git, say what next.

Runs inside the new project directory once every file is written.
"""

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

# Where the template keeps the parts a pset is made of; cookiecutter.json's _psets
# says which parts make each pset.
PARTS = "_parts"


def lay_out_pset(answers: dict, project: Path) -> None:
    """Move the chosen pset's parts over the shared skeleton, then drop every part.

    A part's files land at the same paths in the project; a later part's file wins
    over an earlier part's and the skeleton's.
    """
    for part in answers["_psets"][answers["pset"]]["parts"]:
        shutil.copytree(project / PARTS / part, project, dirs_exist_ok=True)
    shutil.rmtree(project / PARTS)


def optional_files(answers: dict) -> dict[str, tuple[bool, list[str]]]:
    """Each optional feature: whether the answers turn it on, and the files it owns.

    The files of a feature that is off are removed. The template tests read this
    table too, so it is the one place that says which file belongs to which option.
    """
    return {
        "Travis CI": (answers["ci"] in {"travis", "both"}, [".travis.yml"]),
        "GitHub Actions": (
            answers["ci"] in {"github", "both"},
            [".github/workflows/ci.yml", ".github/workflows/release.yml"],
        ),
        # Qlty reads its own configuration; the course's graders read CodeClimate's.
        "Qlty": (answers["quality"] == "qlty", [".qlty/qlty.toml", ".codeclimate.yml"]),
        "licence": (answers["license"] != "none", ["LICENSE"]),
    }


def remove_files_of_features_that_are_off(answers: dict, project: Path) -> None:
    """Remove each file of a feature that is off, and the folders it leaves empty."""
    for is_on, paths in optional_files(answers).values():
        if not is_on:
            for path in paths:
                (project / path).unlink()
                for folder in (project / path).parents:
                    if folder == project or any(folder.iterdir()):
                        break
                    folder.rmdir()


def start_git_repository(answers: dict) -> bool:
    """Make a repository on branch main with one commit by the student.

    Git is a convenience here: when it is missing or fails, say so in one line and
    leave the finished project as it is.
    """
    if shutil.which("git") is None:
        print(
            "warning: git is not installed; skipped creating the repository",
            file=sys.stderr,
        )
        return False
    author = [
        *("-c", f"user.name={answers['full_name']}"),
        *("-c", f"user.email={answers['email']}"),
        *("-c", "commit.gpgsign=false"),
    ]
    message = f"Start {answers['project_name']} from the yopy template"
    steps = {
        "git init": ["git", "init", "--quiet", "--initial-branch=main"],
        "git add": ["git", "add", "--all"],
        "git commit": ["git", *author, "commit", "--quiet", "--message", message],
    }
    for step, command in steps.items():
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            reason = (result.stderr.strip().splitlines() or ["no message"])[-1]
            print(
                f"warning: {step} failed ({reason}); skipped creating the repository",
                file=sys.stderr,
            )
            return False
    return True


# The defaults of cookiecutter.json that stand in for the student, each with an
# example of a real answer: the quick bake works, but should not pass for theirs.
PLACEHOLDERS = {
    "full_name": ("Your Name", "Ada Lovelace"),
    "email": ("you@example.com", "ada@example.com"),
    "github_id": ("your-github-id", "ada-l"),
}


def placeholder_note(answers: dict) -> str:
    """One line naming the placeholders still in use and how to replace them once.

    The user config's default_context is what makes every later bake the
    student's, so the line shows that setting, as YAML to paste.
    """
    used = [name for name, (text, _) in PLACEHOLDERS.items() if answers[name] == text]
    if not used:
        return ""
    pairs = ", ".join(f"{name}: {PLACEHOLDERS[name][1]}" for name in used)
    example = "{" + pairs + "}"  # apart: cookiecutter renders this file with Jinja
    return (
        f"note: placeholders in this bake: {', '.join(used)}; set yours once for "
        f"every bake in ~/.cookiecutterrc, like default_context: {example}\n\n"
    )


def next_steps(answers: dict, project: Path, has_git: bool) -> str:
    """What to type next; no GitHub repository is named after a placeholder."""
    slug = answers["project_slug"]
    first_steps = "".join(
        f"  {step.format(slug=slug)}\n"
        for step in answers["_psets"][answers["pset"]]["first_steps"]
    )
    repo = f"{answers['github_id']}/{answers['repo_name']}"
    first_commit = "" if has_git else "  git init -b main && git add -A && git commit\n"
    if answers["github_id"] == PLACEHOLDERS["github_id"][0]:
        github = (
            "  bake again with your own github_id before creating the GitHub "
            "repository (see the note above)\n"
        )
    else:
        github = (
            f"  create the GitHub repository {repo} (empty), then:\n"
            f"  git remote add origin https://github.com/{repo}.git\n"
            "  git push -u origin main\n"
        )
    return (
        f"\nCreated {project}\n\n"
        f"{placeholder_note(answers)}"
        "Next steps:\n"
        f"  cd {shlex.quote(str(project))}\n"
        "  python -m venv .venv && . .venv/bin/activate\n"
        "  python -m pip install -e '.[test]'\n"
        f"{first_steps}"
        f"{first_commit}"
        f"{github}"
    )


def main(answers: dict) -> int:
    project = Path.cwd()
    lay_out_pset(answers, project)
    remove_files_of_features_that_are_off(answers, project)
    has_git = answers["git_init"] and start_git_repository(answers)
    print(next_steps(answers, project, has_git))
    return 0


if __name__ == "__main__":
    # See pre_gen_project.py: the answers arrive as JSON in a raw string.
    sys.exit(main(json.loads(r"""{{ cookiecutter | tojson }}""")))

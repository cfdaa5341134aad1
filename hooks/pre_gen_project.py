"""Check the answers before any file is written.

Every problem is one line on stderr, ``error: <what is wrong>; <what would be
valid>``, then one command that bakes again with every other answer kept, and the
bake stops with exit code 1. The checks read as a table: the answer, the rule it
must keep, what it is when it does not, and what would be valid. Each answer is
reported once, at the first rule it breaks.
"""

import json
import keyword
import re
import shlex
import sys
import unicodedata
from collections.abc import Collection
from pathlib import Path

# Import names of the generated project's dependencies: a package with one of these
# names would shadow the real one.
DEPENDENCY_IMPORTS = {
    "aiohttp",
    "dotenv",
    "hypothesis",
    "pytest",
    "pytest_asyncio",
    "pytest_cov",
    "ruff",
    "trustme",
    "yarl",
}


def is_filled(text: str) -> bool:
    return bool(text.strip())


def is_one_line(text: str) -> bool:
    """One line of text: no line breaks and no other control characters."""
    return not any(unicodedata.category(char) in {"Cc", "Zl", "Zp"} for char in text)


def is_module_name(text: str) -> bool:
    """A lowercase module name that starts with a letter.

    The slug is also the default Elasticsearch index, and an index name must not
    start with an underscore.
    """
    return re.fullmatch(r"[a-z][a-z0-9_]*", text) is not None


def is_github_id(text: str) -> bool:
    """GitHub's rule for user names: alphanumerics and single inner hyphens."""
    return (
        len(text) <= 39
        and re.fullmatch(r"[A-Za-z0-9]+(-[A-Za-z0-9]+)*", text) is not None
    )


def is_term(text: str) -> bool:
    """A semester: the year and sp (spring), su (summer) or fa (fall)."""
    return re.fullmatch(r"[0-9]{4}(sp|su|fa)", text) is not None


def is_repo_name(text: str) -> bool:
    return (
        text not in {".", ".."} and re.fullmatch(r"[A-Za-z0-9._-]+", text) is not None
    )


def is_email(text: str) -> bool:
    """Good enough for package metadata: one @, no spaces, a dotted domain."""
    return re.fullmatch(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+", text) is not None


# (answer, the rule it must keep, what it is when it does not, what would be valid)
CHECKS = [
    (
        "full_name",
        is_filled,
        "empty",
        "give your name as it should appear in the licence",
    ),
    ("full_name", is_one_line, "not a single line", "give your name on one line"),
    (
        "email",
        is_email,
        "not an email address",
        "use one @, no spaces and a dot in the domain, like you@example.com",
    ),
    ("github_id", is_filled, "empty", "give your GitHub user name, like octocat"),
    (
        "github_id",
        is_github_id,
        "not a GitHub user name",
        "use 1-39 letters, digits or single hyphens, "
        "not starting or ending with a hyphen",
    ),
    ("semester", is_term, "not a term", "use the year and sp, su or fa, like {term}"),
    ("project_name", is_filled, "empty", "give the problem set's name, like Pset X"),
    ("project_name", is_one_line, "not a single line", "give the name on one line"),
    (
        "project_slug",
        is_module_name,
        "not a lowercase module name",
        "use lowercase letters, digits and _, starting with a letter, like pset_x",
    ),
    (
        "project_slug",
        lambda text: not keyword.iskeyword(text) and not keyword.issoftkeyword(text),
        "a Python keyword",
        "choose another name, like pset_x",
    ),
    (
        "project_slug",
        lambda text: text not in sys.stdlib_module_names,
        "a standard-library module",
        "choose a name that does not hide it, like pset_x",
    ),
    (
        "project_slug",
        lambda text: text not in DEPENDENCY_IMPORTS,
        "the import name of a dependency",
        "choose a name that does not hide it, like pset_x",
    ),
    (
        "repo_name",
        lambda text: len(text) <= 100,
        "longer than 100 characters",
        "shorten it to at most 100",
    ),
    (
        "repo_name",
        is_repo_name,
        "not a GitHub repository name",
        "use ASCII letters, digits, '.', '-' or '_' (not '.' or '..')",
    ),
    ("description", is_filled, "empty", "describe the project in one line"),
    (
        "description",
        is_one_line,
        "not a single line",
        "describe the project in one line",
    ),
]

# Answers whose default cookiecutter.json makes from earlier answers: what a message
# calls each, and the answers it is made from, first the one a message tells the
# student to change. cookiecutter.json keeps each such default in a private twin,
# ``__<answer>``: an answer equal to its twin is one the student accepted, not typed.
DERIVED = {
    "project_slug": ("package name", ("project_name",)),
    "repo_name": ("repository name", ("project_name", "semester", "github_id")),
}


def is_accepted_default(answers: dict, name: str) -> bool:
    """Whether the answer is the default cookiecutter.json computed for it."""
    return f"__{name}" in answers and answers[name] == answers[f"__{name}"]


def problems(answers: dict) -> dict[str, str]:
    """The answers to give again, each with the message for the first rule it breaks.

    A derived answer the student accepted is checked only when the answers it is
    made from passed, and its message names the typed answer to change: the student
    never saw it as a rule of its own.
    """
    refused: dict[str, str] = {}
    broken: set[str] = set()
    for name, rule, problem, remedy in CHECKS:
        value = answers[name]
        if name in broken or rule(value):
            continue
        broken.add(name)
        if name in DERIVED and is_accepted_default(answers, name):
            label, sources = DERIVED[name]
            if refused.keys() & set(sources):
                continue
            source = sources[0]
            refused[source] = (
                f"error: {source} {answers[source]!r} gives the {label} {value!r}, "
                f"{problem}; choose another {source}, or set {name}"
            )
        else:
            # An empty answer has nothing to quote.
            subject = name if problem == "empty" else f"{name} {value!r}"
            remedy = remedy.format(term=answers["__semester"])
            refused[name] = f"error: {subject} is {problem}; {remedy}"
    return refused


# Jinja's delimiters, built from halves: cookiecutter renders this file with Jinja
# before it runs.
JINJA_MARKS = tuple("{" + mark for mark in ("{", "%", "#"))
RAW, END_RAW = ("{" + f"% {tag} %" + "}" for tag in ("raw", "endraw"))


def as_typed(value: str | bool) -> str:
    """An answer as extra context, which cookiecutter renders with Jinja.

    Text with Jinja syntax in it is kept from being rendered; a yes/no answer
    becomes yes or no.
    """
    if isinstance(value, bool):
        return "yes" if value else "no"
    if any(mark in value for mark in JINJA_MARKS):
        return RAW + value + END_RAW
    return value


def retry_command(answers: dict, refused: Collection[str]) -> str:
    """The command that asks the questions again with every other answer kept.

    Kept answers come back as the questions' defaults, so only the refused ones
    need typing. A default that cookiecutter.json computes and the student accepted
    is left out, to be computed again from the corrected answers. The command is
    for the shell the bake ran in: the template as it was given, the output folder
    as an absolute path (the hook runs inside the new project's folder).
    """
    kept = {
        name: as_typed(value)
        for name, value in answers.items()
        if not name.startswith("_")
        and name not in refused
        and not is_accepted_default(answers, name)
    }
    output = answers.get("_output_dir") or str(Path.cwd().parent)
    if "_commit" in answers:  # cruft create: it records the template's commit
        extra = json.dumps(kept, ensure_ascii=False)
        command = ["cruft", "create", answers["_template"], "--output-dir", output]
        return shlex.join([*command, "--extra-context", extra])
    checkout = ["--checkout", answers["_checkout"]] if answers.get("_checkout") else []
    pairs = [f"{name}={value}" for name, value in kept.items()]
    command = ["cookiecutter", answers["_template"], *checkout, "--output-dir", output]
    return shlex.join([*command, *pairs])


def listed(names: list[str]) -> str:
    """Names as a sentence lists them: a, b and c."""
    return " and ".join([", ".join(names[:-1]), names[-1]] if names[1:] else names)


def main(answers: dict) -> int:
    refused = problems(answers)
    if not refused:
        return 0
    print(*refused.values(), sep="\n", file=sys.stderr)
    print(
        "to bake again with your other answers kept, run this and answer only "
        f"{listed(list(refused))} (Enter keeps the rest):",
        retry_command(answers, refused),
        sep="\n  ",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    # The raw string holds the answers as JSON: any text a person typed stays a
    # string value, and this file stays valid Python before it is rendered.
    sys.exit(main(json.loads(r"""{{ cookiecutter | tojson }}""")))

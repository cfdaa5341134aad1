"""Check the answers before any file is written.

Every problem is one line on stderr, ``error: <what is wrong>; <what would be
valid>``, and the bake stops with exit code 1. The checks read as a table: the
answer, the rule it must keep, and the message when it does not. Each answer is
reported once, at the first rule it breaks.
"""

import json
import keyword
import re
import sys
import unicodedata

# Import names of the generated project's dependencies: a package with one of these
# names would shadow the real one.
DEPENDENCY_IMPORTS = {
    "aiohttp",
    "dotenv",
    "pytest",
    "pytest_asyncio",
    "pytest_cov",
    "ruff",
    "trustme",
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
        len(text) <= 100
        and text not in {".", ".."}
        and re.fullmatch(r"[A-Za-z0-9._-]+", text) is not None
    )


def is_email(text: str) -> bool:
    """Good enough for package metadata: one @, no spaces, a dotted domain."""
    return re.fullmatch(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+", text) is not None


CHECKS = [
    (
        "full_name",
        is_filled,
        "full_name is empty; give your name as it should appear in the licence",
    ),
    (
        "full_name",
        is_one_line,
        "full_name {value!r} is not a single line; give your name on one line",
    ),
    (
        "email",
        is_email,
        "email {value!r} is not an email address; "
        "use one @, no spaces and a dot in the domain, like you@example.com",
    ),
    (
        "github_id",
        is_filled,
        "github_id is empty; give your GitHub user name, like octocat",
    ),
    (
        "github_id",
        is_github_id,
        "github_id {value!r} is not a GitHub user name; use 1-39 letters, digits "
        "or single hyphens, not starting or ending with a hyphen",
    ),
    (
        "semester",
        is_term,
        "semester {value!r} is not a term; use the year and sp, su or fa, like 2020fa",
    ),
    (
        "project_name",
        is_filled,
        "project_name is empty; give the problem set's name, like Pset X",
    ),
    (
        "project_name",
        is_one_line,
        "project_name {value!r} is not a single line; give the name on one line",
    ),
    (
        "project_slug",
        is_module_name,
        "project_slug {value!r} is not a lowercase module name; use lowercase "
        "letters, digits and _, starting with a letter, like pset_x",
    ),
    (
        "project_slug",
        lambda text: not keyword.iskeyword(text) and not keyword.issoftkeyword(text),
        "project_slug {value!r} is a Python keyword; choose another name, like pset_x",
    ),
    (
        "project_slug",
        lambda text: text not in sys.stdlib_module_names,
        "project_slug {value!r} is a standard-library module; "
        "choose a name that does not hide it, like pset_x",
    ),
    (
        "project_slug",
        lambda text: text not in DEPENDENCY_IMPORTS,
        "project_slug {value!r} is the import name of a dependency; "
        "choose a name that does not hide it, like pset_x",
    ),
    (
        "repo_name",
        is_repo_name,
        "repo_name {value!r} is not a GitHub repository name; use at most 100 "
        "ASCII letters, digits, '.', '-' or '_' (not '.' or '..')",
    ),
    (
        "description",
        is_filled,
        "description is empty; describe the project in one line",
    ),
    (
        "description",
        is_one_line,
        "description {value!r} is not a single line; describe the project in one line",
    ),
]


def problems(answers: dict) -> list[str]:
    """One message for each answer that breaks a rule: the first rule it breaks."""
    messages: dict[str, str] = {}
    for name, rule, message in CHECKS:
        value = answers[name]
        if name not in messages and not rule(value):
            messages[name] = "error: " + message.format(value=value)
    return list(messages.values())


def main(answers: dict) -> int:
    messages = problems(answers)
    for message in messages:
        print(message, file=sys.stderr)
    return 1 if messages else 0


if __name__ == "__main__":
    # The raw string holds the answers as JSON: any text a person typed stays a
    # string value, and this file stays valid Python before it is rendered.
    sys.exit(main(json.loads(r"""{{ cookiecutter | tojson }}""")))

"""Baking with every default: the project a student gets by pressing Enter."""

import datetime
import tomllib

import yaml
from conftest import CONTEXT, PSETS, load_hook, pset_files

EXPECTED_FILES = {
    ".codeclimate.yml",
    ".env.example",
    ".github/workflows/ci.yml",
    ".github/workflows/release.yml",
    ".gitignore",
    ".qlty/qlty.toml",
    "LICENSE",
    "Pipfile",
    "README.md",
    "compose.yaml",
    "pyproject.toml",
    "query1.json",
    "query2.json",
    "query3.json",
    "pset_x/__init__.py",
    "tests",
}

TERM_OF_MONTH = {1: "sp", 2: "sp", 3: "sp", 4: "sp", 5: "sp", 6: "su", 7: "su"}
TERM_OF_MONTH |= {8: "su", 9: "fa", 10: "fa", 11: "fa", 12: "fa"}


def test_bake_with_defaults(cookies):
    result = cookies.bake()

    assert result.exit_code == 0, result.exception
    assert result.exception is None
    project = result.project_path
    assert project.name == "pset_x"
    assert project.is_dir()
    for name in EXPECTED_FILES:
        assert (project / name).exists(), name
    assert (project / ".git").is_dir()
    assert not (project / ".travis.yml").exists()


def test_bake_with_defaults_derives_slug_and_repo_name(bake_once):
    result = bake_once({})

    answers = result.context
    assert answers["project_slug"] == "pset_x"
    assert answers["repo_name"] == f"{answers['semester']}-pset-x-your-github-id"
    pyproject = tomllib.loads((result.project_path / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == "pset_x"
    assert pyproject["project"]["scripts"] == {"pset-x": "pset_x.cli:main"}
    assert (
        pyproject["project"]["urls"]["Repository"]
        == f"https://github.com/your-github-id/{answers['repo_name']}"
    )


def test_bake_with_defaults_names_the_current_term(bake_once):
    result = bake_once({})

    today = datetime.date.today()
    assert result.context["semester"] == f"{today.year}{TERM_OF_MONTH[today.month]}"


def test_bake_with_defaults_passes_its_own_checks():
    pre_hook = load_hook("pre_gen_project")
    defaults = {
        name: value[0] if isinstance(value, list) else value
        for name, value in CONTEXT.items()
        if not name.startswith("_")
    }
    # The computed defaults, each with the twin that holds it (see cookiecutter.json).
    computed = {
        "project_name": PSETS[defaults["pset"]]["project_name"],
        "description": PSETS[defaults["pset"]]["description"],
        "semester": "2020fa",
        "project_slug": "pset_x",
        "repo_name": "2020fa-pset-x-your-github-id",
    }
    defaults |= computed | {f"__{name}": value for name, value in computed.items()}

    assert pre_hook.problems(defaults) == {}


def test_bake_with_defaults_copies_the_package_without_rendering(bake_once):
    """_copy_without_render names the inner package directories, not the project."""
    result = bake_once({})

    package = {
        path: source
        for path, source in pset_files(result.context).items()
        if path.startswith("pset_x/")
    }
    assert "pset_x/cli.py" in package
    for path, source in package.items():
        assert (result.project_path / path).read_bytes() == source.read_bytes()
    pyproject = (result.project_path / "pyproject.toml").read_text()
    assert "cookiecutter" not in pyproject


def test_every_question_has_a_prompt_and_every_choice_a_label():
    prompts = CONTEXT["__prompts__"]
    questions = [name for name in CONTEXT if not name.startswith("_")]

    assert set(prompts) == set(questions)
    for name in questions:
        if isinstance(CONTEXT[name], list):
            labels = prompts[name]
            assert set(labels) == {"__prompt__", *CONTEXT[name]}, name
        else:
            assert isinstance(prompts[name], str), name


def test_supported_pythons_are_the_python_choices_oldest_first():
    supported = CONTEXT["_supported_pythons"]

    assert supported == sorted(supported, key=lambda v: tuple(map(int, v.split("."))))
    assert set(supported) == set(CONTEXT["python_version"])


def test_bake_with_defaults_starts_a_local_cluster_with_compose(bake_once):
    """Elasticsearch and Kibana on this computer only, passwords from .env."""
    result = bake_once({})
    compose = yaml.safe_load((result.project_path / "compose.yaml").read_text())
    services = compose["services"]
    version = CONTEXT["_elastic_stack_version"]

    elasticsearch = services["elasticsearch"]
    image = f"docker.elastic.co/elasticsearch/elasticsearch:{version}"
    assert elasticsearch["image"] == image
    assert elasticsearch["ports"] == ["127.0.0.1:9200:9200"]
    assert elasticsearch["environment"]["ELASTIC_PASSWORD"].startswith(
        "${ELASTIC_PASSWORD:?"
    )
    assert elasticsearch["environment"]["xpack.security.enabled"] == "true"
    assert "healthcheck" in elasticsearch
    kibana = services["kibana"]
    assert kibana["image"] == f"docker.elastic.co/kibana/kibana:{version}"
    assert kibana["ports"] == ["127.0.0.1:5601:5601"]
    assert kibana["environment"]["ELASTICSEARCH_USERNAME"] == "kibana_system"
    assert kibana["environment"]["ELASTICSEARCH_PASSWORD"].startswith(
        "${KIBANA_PASSWORD:?"
    )
    # Kibana starts once its user has the password, which needs a healthy cluster.
    setup = kibana["depends_on"]["kibana-password"]
    assert setup == {"condition": "service_completed_successfully"}
    password_setter = services["kibana-password"]
    assert password_setter["depends_on"]["elasticsearch"] == {
        "condition": "service_healthy"
    }
    assert "/_security/user/kibana_system/_password" in password_setter["command"][-1]
    example = (result.project_path / ".env.example").read_text()
    for name in ("ELASTIC_PASSWORD", "KIBANA_PASSWORD"):
        assert f"\n{name}=\n" in example

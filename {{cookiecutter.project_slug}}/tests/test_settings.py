"""Settings: arguments, then the real environment, then ./.env; clear errors."""

import base64
import os

import pytest

from {{ cookiecutter.project_slug }}.errors import ConfigError
from {{ cookiecutter.project_slug }}.settings import Settings

HOST = "https://cluster.example.com:443"


def write_dotenv(text):
    with open(".env", "w") as dotenv:  # the tests run in an empty temporary folder
        dotenv.write(text)


def test_dotenv_is_read_from_the_working_folder_without_touching_os_environ():
    write_dotenv(
        f"ELASTIC_HOST={HOST}\nELASTIC_PASSWORD='s3cret'\nELASTIC_INDEX=logs\n"
    )
    settings = Settings.load()
    assert (settings.host, settings.index) == (HOST, "logs")
    assert (settings.user, settings.password) == ("elastic", "s3cret")
    assert "ELASTIC_HOST" not in os.environ


def test_the_real_environment_wins_over_dotenv(monkeypatch):
    write_dotenv("ELASTIC_HOST=https://from-dotenv:9200\nELASTIC_USERID=dotenv\n")
    monkeypatch.setenv("ELASTIC_HOST", HOST)
    settings = Settings.load()
    assert settings.host == HOST
    assert settings.user == "dotenv"


def test_arguments_win_over_everything(monkeypatch):
    monkeypatch.setenv("ELASTIC_HOST", "https://from-env:9200")
    write_dotenv("ELASTIC_INDEX=from-dotenv\n")
    settings = Settings.load(host=HOST, index="mine", user="me", password="pw")
    assert (settings.host, settings.index, settings.user) == (HOST, "mine", "me")


def test_empty_values_count_as_unset():
    write_dotenv(f"ELASTIC_HOST={HOST}\nELASTIC_PASSWORD=\nELASTIC_INDEX=\n")
    settings = Settings.load()
    assert settings.password is None
    assert settings.index == "{{ cookiecutter.project_slug }}"
    assert settings.authorization is None


def test_basic_authorization_is_built_from_user_and_password():
    settings = Settings.load(host=HOST, user="ann", password="p:w é")
    assert settings.authorization == "Basic " + base64.b64encode(
        "ann:p:w é".encode()
    ).decode("ascii")


def test_an_api_key_wins_and_only_its_id_is_ever_shown():
    key = base64.b64encode(b"key-id-1:very-secret").decode()
    settings = Settings.load(host=HOST, password="pw", api_key=key)
    assert settings.authorization == f"ApiKey {key}"
    assert settings.credentials == "API key id 'key-id-1'"
    assert "very-secret" not in repr(settings) + settings.credentials
    assert "pw" not in repr(settings)


def test_a_trailing_slash_on_the_host_is_dropped():
    assert Settings.load(host=HOST + "/").host == HOST


@pytest.mark.parametrize(
    ("host", "complaint"),
    [
        (None, "ELASTIC_HOST is not set"),
        ("", "ELASTIC_HOST is not set"),
        ("localhost:9200", "ELASTIC_HOST 'localhost:9200' is not a URL"),
        ("ftp://example.com", "is not a URL"),
        ("https://", "is not a URL"),
    ],
)
def test_a_missing_or_malformed_host_is_refused(host, complaint):
    with pytest.raises(ConfigError, match=complaint):
        Settings.load(host=host)


@pytest.mark.parametrize(
    "index", ["Logs", "_logs", "-logs", "+logs", "lo gs", "a/b", "a,b", "a*", ".", ".."]
)
def test_index_names_elasticsearch_refuses_are_refused_early(index):
    with pytest.raises(ConfigError, match="is not a valid index name"):
        Settings.load(host=HOST, index=index)


def test_a_missing_ca_file_is_refused():
    with pytest.raises(ConfigError, match=r"ELASTIC_CA_CERTS is 'nope\.crt'"):
        Settings.load(host=HOST, ca_certs="nope.crt")


@pytest.mark.parametrize(
    ("cloud_id", "endpoint"),
    [
        (
            "pset:dXMtY2VudHJhbDEuZ2NwLmNsb3VkLmVzLmlvOjkyNDMkYWJjMTIzJGRlZjQ1Ng==",
            "https://abc123.us-central1.gcp.cloud.es.io:9243",
        ),
        (  # no port means 443; the padding may be missing
            "my:deployment:ZXUtd2VzdC0xLmF3cy5mb3VuZC5pbyRlcy11dWlkJGtiLXV1aWQ",
            "https://es-uuid.eu-west-1.aws.found.io:443",
        ),
    ],
)
def test_a_cloud_id_stands_for_its_https_endpoint(monkeypatch, cloud_id, endpoint):
    monkeypatch.setenv("ELASTIC_CLOUD_ID", cloud_id)
    assert Settings.load().host == endpoint


def test_an_explicit_host_wins_over_a_cloud_id():
    write_dotenv(f"ELASTIC_HOST={HOST}\nELASTIC_CLOUD_ID=x:bm90LXVzZWQkZXMka2I=\n")
    assert Settings.load().host == HOST


@pytest.mark.parametrize("cloud_id", ["nonsense", "name:", "name:!!!", "n:aG9zdA=="])
def test_a_malformed_cloud_id_is_refused(cloud_id):
    with pytest.raises(ConfigError, match="ELASTIC_CLOUD_ID is not a cloud ID"):
        Settings.load(cloud_id=cloud_id)

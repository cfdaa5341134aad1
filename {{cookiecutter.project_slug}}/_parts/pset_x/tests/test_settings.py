"""Settings: arguments, then the real environment, then ./.env; clear errors."""

import base64
import os

import pytest

from {{ cookiecutter.project_slug }}.errors import (
    ConfigError,
)
from {{ cookiecutter.project_slug }}.settings import (
    INDEX_RULE,
    Settings,
)

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
    ("host", "endpoint"),
    [
        ("http://[::1]:9200", "http://[::1]:9200"),
        ("HTTPS://Cluster.example.com:9243/", "https://Cluster.example.com:9243"),
        # a cluster behind a reverse proxy, under a path of its own
        ("https://proxy.example.com/search/es/", "https://proxy.example.com/search/es"),
        ("http://es_node:9200", "http://es_node:9200"),  # a Docker service name
    ],
)
def test_an_endpoint_keeps_its_host_port_and_path_prefix(host, endpoint):
    settings = Settings.load(host=host)
    assert settings.host == endpoint
    assert str(settings.url.joinpath("logs")) == endpoint.lower() + "/logs"


@pytest.mark.parametrize(
    ("host", "problem"),
    [
        ("localhost:9200", "it must start with https:// or http://"),
        ("ftp://example.com", "it must start with https:// or http://"),
        ("https://", "the host is missing"),
        ("http://[::1", "an IPv6 address needs its closing ]"),
        ("http://::1:9200", "an IPv6 address goes in brackets, like http://[::1]:9200"),
        ("http://[::g]:9200", "[::g] is not an IPv6 address"),
        ("http://1.2.3.4.5:9200", "1.2.3.4.5 is not an IPv4 address"),
        ("http://-cluster-:9200", "'-cluster-' is not a host name"),
        ("http://my cluster:9200", "it holds a space or a control character"),
        ("http://localhost:99999", "the port after : must be a number from 1 to 65535"),
        ("http://localhost:0", "the port after : must be a number from 1 to 65535"),
        ("http://localhost:", "the port after : must be a number from 1 to 65535"),
        ("http://localhost:+80", "the port after : must be a number from 1 to 65535"),
    ],
)
def test_a_malformed_host_is_refused_with_what_is_wrong(host, problem):
    with pytest.raises(ConfigError) as refused:
        Settings.load(host=host)
    assert str(refused.value) == (
        f"ELASTIC_HOST {host!r} is not a URL ({problem}): use the full endpoint, "
        "like https://my-deployment.es.us-east-1.aws.elastic.cloud:443"
    )


@pytest.mark.parametrize("host", [None, "", "   "])
def test_a_missing_host_is_refused(host):
    with pytest.raises(ConfigError, match="ELASTIC_HOST is not set"):
        Settings.load(host=host)


@pytest.mark.parametrize(
    ("host", "without"),
    [
        ("http://elastic:s3cret@127.0.0.1:19201", "http://127.0.0.1:19201"),
        (
            "https://elastic:p@ss/w#rd@cluster.example.com",
            "https://cluster.example.com",
        ),
        ("elastic:s3cret@localhost:9200", "localhost:9200"),
    ],
)
def test_credentials_in_the_host_are_refused_and_never_shown(host, without):
    with pytest.raises(ConfigError) as refused:
        Settings.load(host=host)
    assert str(refused.value) == (
        "ELASTIC_HOST holds a user name or password: put them in ELASTIC_USERID and "
        "ELASTIC_PASSWORD (or use ELASTIC_API_KEY), and set ELASTIC_HOST without "
        f"them, to {without!r}"
    )
    assert "s3cret" not in str(refused.value)
    assert "ss/w" not in str(refused.value)


@pytest.mark.parametrize(
    "host", ["http://127.0.0.1:19200?x=1", "http://127.0.0.1:19200/#top"]
)
def test_a_query_or_fragment_in_the_host_is_refused_and_not_shown(host):
    with pytest.raises(ConfigError) as refused:
        Settings.load(host=host)
    message = str(refused.value)
    assert message.startswith(
        "ELASTIC_HOST has a query (?...) or a fragment (#...), which has no place "
        "in it: set it to the endpoint alone, 'http://127.0.0.1:19200"
    )
    assert "x=1" not in message
    assert "top" not in message


@pytest.mark.parametrize(
    "index", ["logs.2026", "ünïcode", "..x", ".hidden", "a~b!c", "x" * 255, "é" * 127]
)
def test_index_names_elasticsearch_accepts_are_accepted(index):
    assert Settings.load(host=HOST, index=index).index == index


@pytest.mark.parametrize(
    ("index", "problem"),
    [
        ("Logs", "it has upper case"),
        ("ÜNÏCODE", "it has upper case"),
        ("_logs", "it starts with '_'"),
        ("-logs", "it starts with '-'"),
        ("+logs", "it starts with '+'"),
        ("lo gs", "it holds ' '"),
        ("a/b", "it holds '/'"),
        ("a\\b", "it holds '\\\\'"),
        ("a,b", "it holds ','"),
        ("a*", "it holds '*'"),
        ("a?", "it holds '?'"),
        ('a"b', "it holds '\"'"),
        ("a<b", "it holds '<'"),
        ("a>b", "it holds '>'"),
        ("a|b", "it holds '|'"),
        ("a#b", "it holds '#'"),
        ("a:b", "it holds ':'"),
        (".", "it is '.'"),
        ("..", "it is '..'"),
        ("x" * 256, "it is 256 bytes long"),
        ("é" * 128, "it is 256 bytes long"),
    ],
)
def test_index_names_elasticsearch_refuses_are_refused_with_its_rule(index, problem):
    with pytest.raises(ConfigError) as refused:
        Settings.load(host=HOST, index=index)
    assert str(refused.value) == (
        f"ELASTIC_INDEX {index!r} is not a valid index name ({problem}): {INDEX_RULE}"
    )


def test_the_index_rule_states_elasticsearch_s_rule():
    assert INDEX_RULE == (
        "an index name is lower case, at most 255 bytes, holds none of "
        '\\ / * ? " < > | , # : or a space, does not start with -, _ or +, and is '
        "not . or .."
    )


def test_a_missing_ca_file_is_refused():
    with pytest.raises(ConfigError, match=r"ELASTIC_CA_CERTS is 'nope\.crt'"):
        Settings.load(host=HOST, ca_certs="nope.crt")


def test_a_ca_file_without_a_certificate_is_refused_before_any_request():
    with open("http_ca.crt", "w") as wrong:
        wrong.write("not a certificate\n")
    with pytest.raises(ConfigError) as refused:
        Settings.load(host=HOST, ca_certs="http_ca.crt")
    assert str(refused.value) == (
        "ELASTIC_CA_CERTS is 'http_ca.crt', which holds no certificate TLS can "
        "read: point it to your cluster's CA certificate (for a local cluster, "
        "config/certs/http_ca.crt)"
    )


@pytest.mark.parametrize("key", ["id:secret-key", "c2Vj cmV0", "c2VjcmV0\r\nX-Evil: 1"])
def test_an_api_key_that_is_not_base64_is_refused_without_being_shown(key):
    with pytest.raises(ConfigError) as refused:
        Settings.load(host=HOST, api_key=key)
    message = str(refused.value)
    assert message.startswith("ELASTIC_API_KEY is not an encoded API key")
    assert "secret" not in message
    assert "c2V" not in message


def test_a_setting_that_is_not_utf8_is_refused_without_being_shown(monkeypatch):
    monkeypatch.setenv("ELASTIC_PASSWORD", "p\udcffssword")  # the byte 0xff, as read
    with pytest.raises(ConfigError) as refused:
        Settings.load(host=HOST)
    assert str(refused.value) == (
        "ELASTIC_PASSWORD is not valid UTF-8 text: set it again in .env or in the "
        "environment"
    )


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

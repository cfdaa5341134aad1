"""Jinja settings the template relies on, loaded through ``_extensions``."""

from jinja2 import Environment
from jinja2.ext import Extension


class UnicodeJsonExtension(Extension):
    """Make ``tojson`` write non-ASCII characters as they are.

    The templates put every answer a person types into TOML, YAML and JSON through
    ``tojson``. By default it escapes non-ASCII text as ``\\uXXXX``, and a character
    outside the Basic Multilingual Plane (most emoji) becomes a surrogate pair, which
    TOML rejects and YAML reads back as two broken characters. Written as UTF-8
    text, the same JSON string is a valid TOML and YAML double-quoted string that
    reads back exactly as typed.
    """

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.policies["json.dumps_kwargs"] = {
            "sort_keys": True,
            "ensure_ascii": False,
        }

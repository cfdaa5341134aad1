"""The mapping check of `info`: what differs from the event mapping, field by field."""

from {{ cookiecutter.project_slug }}.es_logger import (
    ElasticLogger,
)
from {{ cookiecutter.project_slug }}.monitor import (
    mapping_differences,
)

EXPECTED = ElasticLogger.schema["mappings"]


def test_the_event_mapping_has_no_differences():
    assert mapping_differences(EXPECTED, EXPECTED) == []


def test_an_empty_mapping_lacks_every_field_in_the_events_order():
    differences = mapping_differences({}, EXPECTED)
    assert differences == [f"{name} is missing" for name in EXPECTED["properties"]]


def test_settings_of_the_mapping_beside_its_fields_are_named_too():
    live = EXPECTED | {"dynamic": "strict", "_source": {"enabled": False}}
    assert mapping_differences(live, EXPECTED) == [
        '_source is {"enabled":false}, not the default',
        'dynamic is "strict", not the default',
    ]


def test_an_object_where_a_field_was_expected_is_named_as_an_object():
    live = {"properties": dict(EXPECTED["properties"])}
    live["properties"]["location"] = {"properties": {"lat": {"type": "float"}}}
    assert mapping_differences(live, EXPECTED) == ["location is object, not geo_point"]

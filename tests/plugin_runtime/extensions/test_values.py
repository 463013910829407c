import math

from plugin_runtime.extensions.values import dumps, loads


def test_plain_values_round_trip() -> None:
    value = {"a": [1, 2.5, "x", None, True], "nested": {"b": {}}}
    assert loads(dumps(value)) == value


def test_nan_becomes_null_as_in_the_original() -> None:
    assert loads(dumps({"x": math.nan})) == {"x": None}


def test_integers_over_64_bits_and_number_keys_still_round_trip() -> None:
    assert loads(dumps(2**70)) == 2**70
    assert loads(dumps({1: "a"})) == {"1": "a"}


def test_text_written_by_the_json_module_reads_back() -> None:
    assert loads('{"x": NaN}')["x"] != loads('{"x": NaN}')["x"]  # NaN, as json wrote it

from app.pipeline.person_properties import apply_updates, with_derived_updates


def test_set_once_only_writes_absent_keys_and_stored_null_counts_as_present() -> None:
    person = {"a": None, "b": 1}
    changed = apply_updates(person, {"$set_once": {"a": 5, "b": 5, "c": 5}})
    assert changed
    assert person == {"a": None, "b": 1, "c": 5}


def test_set_wins_over_set_once_for_the_same_key() -> None:
    person: dict[str, object] = {}
    apply_updates(person, {"$set_once": {"plan": "free"}, "$set": {"plan": "pro"}})
    assert person == {"plan": "pro"}


def test_unchanged_set_reports_no_change() -> None:
    person = {"plan": "pro"}
    assert not apply_updates(person, {"$set": {"plan": "pro"}})


def test_utm_keys_go_to_set_and_initial_values_to_set_once() -> None:
    props = {"utm_source": "news", "$browser": "Firefox", "$set": {"utm_source": "old"}}
    derived = with_derived_updates(props)
    assert derived["$set"] == {"utm_source": "news"}
    assert derived["$set_once"] == {"$initial_utm_source": "news", "$initial_browser": "Firefox"}
    assert "$set_once" not in props  # the caller's properties are not changed

"""The original's person rules over one batch, decided in memory in event order.

`PersonLedger` starts from the stored persons of the batch's distinct ids and applies
each event as the original did one event at a time: `alias` (who survives a merge, whose
properties win, refusing to absorb an identified person on `$identify`), creation of a
person for a new distinct id, then `$set_once`/`$set`/`$unset`. What it decided leaves
as one `PersonChanges` for the store. Because every decision sees the effect of every
earlier event, and nothing else, any split of a sequence into batches stores the same
persons as running the events one at a time.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from app.pipeline.person_properties import apply_updates
from app.pipeline.timestamps import format_iso
from app.stores.persons import Key, Person, PersonChanges


class PersonLedger:
    """Persons of one batch as its events change them."""

    def __init__(self, owners: dict[Key, int], people: dict[int, Person]) -> None:
        self._owner = dict(owners)  # distinct id -> id of its person now
        self._people = dict(people)  # the persons that exist now, stored or new (id < 0)
        self._new: list[int] = []  # new persons in the order they were created
        self._new_keys: list[Key] = []  # distinct ids mapped in this batch, in order
        self._moved: list[tuple[int, int]] = []
        self._deleted: list[int] = []
        self._merged_into: dict[int, int] = {}
        self._changed: set[int] = set()
        self._views: dict[int, dict[str, Any]] = {}

    def person(self, key: Key) -> Person | None:
        person_id = self._owner.get(key)
        return None if person_id is None else self._people[person_id]

    def ensure(self, key: Key, created_at: datetime) -> Person:
        """The person of `key`, created (with `created_at`) when the id is new."""
        return self.person(key) or self._create([key], created_at, identified=False)

    def alias(
        self, team_id: int, previous: str, current: str, *, identify: bool, at: datetime
    ) -> None:
        """Make `previous` and `current` one person (ingestion spec 4.3)."""
        if previous == current:
            return
        old = self.person((team_id, previous))
        new = self.person((team_id, current))
        if old is None and new is None:
            self._create([(team_id, current), (team_id, previous)], at, identified=identify)
            return
        if new is None:
            assert old is not None
            self._map((team_id, current), old)
        elif old is None:
            self._map((team_id, previous), new)
        elif old.id != new.id and not (identify and old.is_identified):
            # on $identify an identified person is never absorbed; it is still marked below
            self._merge(old, into=new)
        if identify:
            person = self.person((team_id, current))
            if person is not None and not person.is_identified:
                person.is_identified = True
                self._touch(person)

    def update_properties(self, person: Person, properties: dict[str, Any]) -> None:
        """The event's `$set_once`, `$set` and `$unset` applied to its person."""
        changed = apply_updates(person.properties, properties)
        unset = properties.get("$unset")
        if isinstance(unset, list):
            for key in unset:
                if isinstance(key, str) and key in person.properties:
                    del person.properties[key]
                    changed = True
        if changed:
            self._touch(person)

    def view(self, person: Person) -> dict[str, Any]:
        """The person as its events carry it now; shared until the person changes."""
        view = self._views.get(person.id)
        if view is None:
            view = self._views[person.id] = {
                "uuid": person.uuid,
                "properties": dict(person.properties),
                "created_at": format_iso(person.created_at),
            }
        return view

    def changes(self) -> PersonChanges:
        def final(person_id: int) -> int:
            while person_id in self._merged_into:
                person_id = self._merged_into[person_id]
            return person_id

        return PersonChanges(
            created=[self._people[i] for i in self._new if i in self._people],
            mapped=[(key, self._owner[key]) for key in self._new_keys],
            moved=[(source, final(target)) for source, target in self._moved],
            updated=[p for i, p in self._people.items() if i > 0 and i in self._changed],
            deleted=list(self._deleted),
        )

    def _create(self, keys: list[Key], created_at: datetime, *, identified: bool) -> Person:
        person = Person(
            -len(self._new) - 1, str(uuid.uuid4()), keys[0][0], {}, identified, created_at
        )
        self._people[person.id] = person
        self._new.append(person.id)
        for key in keys:
            self._map(key, person)
        return person

    def _map(self, key: Key, person: Person) -> None:
        self._owner[key] = person.id
        self._new_keys.append(key)

    def _merge(self, other: Person, *, into: Person) -> None:
        """`other` joins `into` (spec 4.6): the survivor's properties win on a clash."""
        into.properties = {**other.properties, **into.properties}
        into.created_at = min(into.created_at, other.created_at)
        into.is_identified = into.is_identified or other.is_identified
        self._touch(into)
        for key, owner in self._owner.items():
            if owner == other.id:
                self._owner[key] = into.id
        if other.id > 0:
            self._moved.append((other.id, into.id))
            self._deleted.append(other.id)
        self._merged_into[other.id] = into.id
        self._changed.discard(other.id)
        del self._people[other.id]

    def _touch(self, person: Person) -> None:
        self._changed.add(person.id)
        self._views.pop(person.id, None)

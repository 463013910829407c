"""Autocapture elements (ingestion spec 3.4), on the original's own test elements."""

from __future__ import annotations

from pathlib import Path

from app.embedded import run_chain
from app.pipeline.elements import elements_chain, elements_hash, elements_of, take_elements
from tests.app.pipeline_fixtures import capture, embedded

ORIGINALS_TEST_ELEMENTS = [
    {"tag_name": "a", "nth_child": 1, "nth_of_type": 2, "attr__class": "btn btn-sm"},
    {"tag_name": "div", "nth_child": 1, "nth_of_type": 2, "$el_text": "💻"},
]


def test_elements_chain_is_written_as_the_original_writes_it() -> None:
    chain = elements_chain(elements_of(ORIGINALS_TEST_ELEMENTS))
    assert chain == (
        'a.btn.btn-sm:attr__class="btn btn-sm"nth-child="1"nth-of-type="2";'
        'div:nth-child="1"nth-of-type="2"text="💻"'
    )


def test_elements_hash_is_the_originals() -> None:
    elements = elements_of(ORIGINALS_TEST_ELEMENTS)
    assert elements_hash(elements) == "0679137c0cd2408a2906839143e7a71f"
    assert elements_hash(elements[:1]) == "a89021a60b3497d24e93ae181fba01aa"


def test_text_and_href_are_cut_and_attributes_are_kept_whole() -> None:
    (element,) = elements_of(
        [
            {
                "tag_name": "a",
                "$el_text": "t" * 500,
                "attr__href": "h" * 3000,
                "attr__data-x": "d" * 3000,
            }
        ]
    )
    assert len(element["text"]) == 400 and len(element["href"]) == 2048
    assert element["attributes"]["attr__href"] == "h" * 3000
    assert element["attributes"]["attr__data-x"] == "d" * 3000


def test_quotes_are_escaped_and_classes_sorted_without_quotes() -> None:
    chain = elements_chain(
        elements_of([{"tag_name": "b", "attr__class": 'z "q" a', "$el_text": 'say "hi"'}])
    )
    # sorted as the original sorts (code units: the quoted class first), then unquoted
    assert chain.startswith("b.q.a.z:")
    assert 'text="say \\"hi\\""' in chain and 'attr__class="z \\"q\\" a"' in chain


def test_elements_leave_the_properties_and_an_empty_list_stays() -> None:
    properties = {"$elements": ORIGINALS_TEST_ELEMENTS, "$event_type": "click"}
    elements, chain = take_elements(properties)
    assert properties == {"$event_type": "click"} and len(elements) == 2 and chain
    empty = {"$elements": []}
    assert take_elements(empty) == ([], "") and empty == {"$elements": []}


async def test_an_autocapture_event_is_stored_with_its_chain_and_without_elements(
    tmp_path: Path,
) -> None:
    async with embedded(tmp_path) as resources:
        properties = {"$elements": ORIGINALS_TEST_ELEMENTS}
        await run_chain(resources.context, [capture("$autocapture", properties)])
        (stored,) = await resources.context.events.read(1)
    assert stored["elements_chain"] == elements_chain(elements_of(ORIGINALS_TEST_ELEMENTS))
    assert "$elements" not in stored["properties"]

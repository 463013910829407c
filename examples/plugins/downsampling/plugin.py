# Keeps a percentage of events and drops the rest. Distinct ID aware sampling decides
# from a hash of the distinct id, so a person's events are all kept or all dropped, and
# an id kept at some percentage stays kept when the percentage is raised.
import hashlib
import math
import random
import re

# JavaScript's whitespace, which parseFloat skips; Python's \s is a different set
JS_WHITESPACE = "\t\n\x0b\x0c\r \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
# the prefix JavaScript's parseFloat reads: "50%" is 50, "abc" is not a number
FLOAT_PREFIX = re.compile(
    "[" + JS_WHITESPACE + "]*([+-]?(?:Infinity|(?:[0-9]+[.]?[0-9]*|[.][0-9]+)(?:[eE][+-]?[0-9]+)?))"
)
# the largest 15-digit hex number as a JavaScript double (2**60), so hashes compare
# exactly as in the original and the same ids are kept
LARGEST_PREFIX = float(0xFFFFFFFFFFFFFFF)


def parse_float(value):
    found = FLOAT_PREFIX.match(value if isinstance(value, str) else str(value))
    if found is None:
        return None
    return float(found.group(1))


def setup_plugin(meta):
    percentage = parse_float(meta.config.get("percentage"))
    if percentage is None or percentage > 100 or percentage < 0:
        raise ValueError("Percentage must be a number between 0 and 100.")
    meta.global_["percentage"] = percentage
    meta.global_["randomSampling"] = meta.config.get("samplingMethod") == "Random sampling"


def process_event(event, meta):
    percentage = meta.global_["percentage"]
    if meta.global_["randomSampling"]:
        # the original compares 0..99 with <=, so 0% still keeps about 1 event in 100
        should_ingest_event = math.floor(random.random() * 100) <= percentage
    else:
        digest = hashlib.sha256(event["distinct_id"].encode("utf-8")).hexdigest()
        decision_value = float(int(digest[:15], 16)) / LARGEST_PREFIX
        should_ingest_event = decision_value <= percentage / 100
    if should_ingest_event:
        return event
    return None

# Drops events whose properties fail the filters of the `filters` attachment, and events
# named in `eventsToDrop`. The attachment is a list of filter groups (a plain list of
# filters is the older format, read as one group): an event is kept when every filter of
# at least one group holds.
#
# The original is JavaScript and compares values with JS operators, so the helpers below
# give Python the same answers (`1 == True` is false there, `"20" > 10` is true), rather
# than raising or matching where the original would not.
import json
import math
import re

NAN = float("nan")
JS_DECIMAL = re.compile(r"[+-]?(?:Infinity|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)")
JS_RADIX = re.compile(r"0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+")


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def strict_equal(a, b):
    """JS `===`."""
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        # objects are compared by identity there, and two JSON values never share one
        return False
    if is_number(a) and is_number(b):
        return a == b
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if a is None or b is None:
        return a is None and b is None
    return isinstance(a, str) and isinstance(b, str) and a == b


def to_number(value):
    """JS `Number(value)`; objects and arrays count as NaN."""
    if isinstance(value, bool):
        return 1 if value else 0
    if is_number(value):
        return value
    if value is None:
        return 0
    if not isinstance(value, str):
        return NAN
    text = value.strip()
    if not text:
        return 0
    if JS_DECIMAL.fullmatch(text):
        return float(text)
    if JS_RADIX.fullmatch(text):
        return int(text, 0)
    return NAN


def to_string(value):
    """JS `String(value)`, for the string operators' coercions."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    if isinstance(value, list):
        return ",".join("" if v is None else to_string(v) for v in value)
    return "[object Object]"


def relational(a, b):
    """The operands as JS `<` and `>` compare them: two strings as text, else as numbers."""
    if isinstance(a, str) and isinstance(b, str):
        return a, b
    return to_number(a), to_number(b)


def includes(a, b):
    """JS `a.includes(b)`: strings and arrays have it, other values raise."""
    if isinstance(a, str):
        return to_string(b) in a
    if isinstance(a, list):
        return any(strict_equal(item, b) for item in a)
    raise TypeError("a.includes is not a function (the property is " + to_string(a) + ")")


def regex_test(a, b):
    return re.search(to_string(b), to_string(a)) is not None


def gt(a, b):
    x, y = relational(a, b)
    return x > y


def lt(a, b):
    x, y = relational(a, b)
    return x < y


def gte(a, b):
    x, y = relational(a, b)
    return x >= y


def lte(a, b):
    x, y = relational(a, b)
    return x <= y


OPERATIONS = {
    "string": {
        "is": strict_equal,
        "is_not": lambda a, b: not strict_equal(a, b),
        "contains": includes,
        "not_contains": lambda a, b: not includes(a, b),
        "regex": regex_test,
        "not_regex": lambda a, b: not regex_test(a, b),
    },
    "number": {
        "gt": gt,
        "lt": lt,
        "gte": gte,
        "lte": lte,
        "eq": strict_equal,
        "neq": lambda a, b: not strict_equal(a, b),
    },
    "boolean": {
        "is": strict_equal,
        "is_not": lambda a, b: not strict_equal(a, b),
    },
}


def parse_filters_and_migrate(filters):
    if not isinstance(filters, list):
        raise ValueError("No filters found")
    # the older single list of filters (all must hold) becomes one group
    if not filters or not isinstance(filters[0], list):
        return [filters]
    return filters


def operation_for(filter_):
    operations = OPERATIONS.get(filter_["type"])
    if operations is None:
        raise TypeError('Unknown filter type "' + to_string(filter_["type"]) + '"')
    return operations.get(filter_["operator"])


def setup_plugin(meta):
    attachment = meta.attachments.get("filters")
    if attachment:
        try:
            filter_groups = parse_filters_and_migrate(json.loads(attachment.contents))
            # a bad operator fails the setup, not every event later
            for filters in filter_groups:
                for filter_ in filters:
                    if not operation_for(filter_):
                        raise ValueError(
                            'Invalid operator "'
                            + to_string(filter_["operator"])
                            + '" for type "'
                            + to_string(filter_["type"])
                            + '" in filter for "'
                            + to_string(filter_["property"])
                            + '"'
                        )
            meta.global_["filters"] = filter_groups
        except Exception as error:
            raise ValueError("Could not parse filters attachment: " + str(error)) from error
    else:
        meta.global_["filters"] = []
    events_to_drop = meta.config.get("eventsToDrop")
    if events_to_drop is None:
        meta.global_["eventsToDrop"] = []
    else:
        meta.global_["eventsToDrop"] = [name.strip() for name in events_to_drop.split(",")]
    meta.global_["keepUndefinedProperties"] = meta.config.get("keepUndefinedProperties") == "Yes"


def process_event(event, meta):
    properties = event.get("properties")
    if properties is None:
        return event
    keep_undefined = meta.global_.get("keepUndefinedProperties", False)
    filter_groups = parse_filters_and_migrate(meta.global_.get("filters"))

    if event.get("event") in meta.global_["eventsToDrop"]:
        return None

    def holds(filter_):
        # a property the event lacks (JS `undefined`) is not compared at all
        if filter_["property"] not in properties:
            return keep_undefined
        operation = operation_for(filter_)
        if not operation:
            raise ValueError("Invalid operator " + to_string(filter_["operator"]))
        return operation(properties[filter_["property"]], filter_["value"])

    keep = any(all(holds(f) for f in group) for group in filter_groups)
    return event if keep else None

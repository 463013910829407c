# Renames every custom event to the configured naming convention. PostHog's own events
# ($-prefixed, and the survey events its surveys send) keep their names, since PostHog
# relies on them as they are.
import re

# JavaScript's \s, which the original's pattern uses; Python's \s is a different set
JS_WHITESPACE = "\t\n\x0b\x0c\r \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"


def capitalise_words(first):
    # `pattern` is the one that matched the incoming name, so only its separators are
    # turned into capitals; `first` decides between camelCase and PascalCase
    def transform(name, pattern):
        rest = pattern.sub(lambda match: match.group(0)[-1].upper(), name[1:])
        return first(name[0]) + rest

    return transform


def join_words(sep):
    def transform(name, pattern):
        return default_transformation(name, pattern, sep)

    return transform


def default_transformation(name, pattern, sep):
    def separated(match):
        found = match.group(0)
        return sep + (found.lower() if len(found) == 1 else found[1].lower())

    parsed = pattern.sub(separated, name)
    if parsed[:1] == sep:
        # a PascalCase name's first capital would otherwise leave a leading separator
        return parsed[1:]
    return parsed


TRANSFORMATIONS = [
    {
        "name": "camelCase",
        "pattern": re.compile("[A-Z]"),
        "transform": capitalise_words(lambda c: c.lower()),
    },
    {
        "name": "PascalCase",
        "pattern": re.compile("[A-Z]"),
        "transform": capitalise_words(lambda c: c.upper()),
    },
    {"name": "snake_case", "pattern": re.compile("([_])([a-z])"), "transform": join_words("_")},
    {"name": "kebab_case", "pattern": re.compile("([-])([a-z])"), "transform": join_words("-")},
    {
        "name": "spaces",
        "pattern": re.compile("([" + JS_WHITESPACE + "])([a-z])"),
        "transform": join_words(" "),
    },
]

CONFIG_SELECTION = {
    "camelCase": 0,
    "PascalCase": 1,
    "snake_case": 2,
    "kebab-case": 3,
    "spaces in between": 4,
}

SKIPPED_POSTHOG_EVENTS = ("survey shown", "survey sent", "survey dismissed")


def standardize_name(name, desired):
    # the first other convention whose pattern occurs in the name is taken as the one the
    # name is written in
    for transformation in TRANSFORMATIONS:
        if transformation["name"] == desired["name"]:
            continue
        if not transformation["pattern"].search(name):
            continue
        return desired["transform"](name, transformation["pattern"])
    return name


def process_event(event, meta):
    name = event["event"]
    if not name.startswith("$") and name not in SKIPPED_POSTHOG_EVENTS:
        desired = TRANSFORMATIONS[CONFIG_SELECTION[meta.config.get("defaultNamingConvention")]]
        event["event"] = standardize_name(name, desired)
    return event

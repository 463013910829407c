"""Ordinary plugin code runs in the sandbox, plugins are isolated from each other, and
the compiler reports what it loaded and why a load failed."""

from __future__ import annotations

import pytest

from plugin_runtime.errors import PluginLoadError
from plugin_runtime.sandbox.compiler import PLUGIN_FUNCTIONS, compile_plugin
from plugin_runtime.sandbox.limits import Limits
from tests.plugin_runtime.sandbox_fixtures import call, compiled, fake_meta

ORDINARY = """
import json, re, datetime, math, hashlib, hmac, base64, uuid, time, random, string
import decimal, collections, itertools, functools
import urllib.parse
from urllib.parse import urlencode
from collections import defaultdict, Counter, OrderedDict

PATTERN = re.compile(r"^/(\\w+)")


class Visit:
    def __init__(self, path):
        self.path = path
        self.hits = 0

    def hit(self):
        self.hits += 1
        return self


class PluginProblem(Exception):
    pass


def process_event(event, meta):
    props = event["properties"]
    props["processed"] = True
    props["count"] = props.get("count", 0)
    props["count"] += 1
    tags = [t.upper() for t in props.get("tags", []) if t]
    ints = sorted(props.items())
    pairs = {k: v for k, v in ints if isinstance(v, int) and not isinstance(v, bool)}
    total = 0
    for k, v in pairs.items():
        total += v
    a, (b, c) = 1, (2, 3)
    props["summary"] = f"{len(tags)} tags, total={total!r}, abc={a + b + c:03d}"
    props["tags"] = tags
    props["limits"] = [min(1, 2), max([3, 4]), sum(x * 2 for x in range(5)), abs(-2), round(2.5)]
    props["types"] = [list((1, 2)), tuple([3]), sorted(set([2, 1, 2])), dict(a=1)]
    ts = datetime.datetime.fromisoformat(event["timestamp"])
    props["day"] = (ts + datetime.timedelta(days=1)).strftime("%Y-%m-%d")
    props["hash"] = hashlib.sha256(event["event"].encode()).hexdigest()[:8]
    props["sig"] = hmac.new(b"k", b"m", hashlib.sha256).hexdigest()[:8]
    props["b64"] = base64.b64encode(b"hi").decode()
    props["uuid"] = len(str(uuid.uuid4()))
    props["json"] = json.loads(json.dumps({"a": [1, 2]}, sort_keys=True))
    props["path"] = PATTERN.match(urllib.parse.urlparse(props["url"]).path).group(1)
    props["query"] = urlencode({"q": "a b"})
    props["money"] = str(decimal.Decimal("1.10") + decimal.Decimal("2.20"))
    props["pct"] = "%s=%d%%" % ("share", 7 % 4)
    props["pow"] = 2 ** 10
    props["sqrt"] = math.sqrt(16)
    counter = Counter("abca")
    groups = defaultdict(list)
    for word in ["ant", "bee", "asp"]:
        groups[word[0]].append(word)
    props["grouped"] = dict(groups)
    props["common"] = counter.most_common(1)[0][0]
    props["ordered"] = list(OrderedDict(b=1, a=2))
    props["chain"] = list(itertools.chain([1], [2]))
    props["reduced"] = functools.reduce(lambda x, y: x + y, [1, 2, 3])
    props["letters"] = string.ascii_lowercase[:3]
    props["visits"] = Visit("/a").hit().hit().hits
    props["rand"] = 0 <= random.random() < 1
    props["now"] = time.time() > 0
    props["text"] = "-".join(["a", "b"]).replace("-", "+").ljust(4, ".")
    del props["url"]
    try:
        raise PluginProblem("expected")
    except PluginProblem as problem:
        props["caught"] = str(problem)
    finally:
        props["finally"] = True
    if meta.config["key"] != "v":
        raise RetryError("bad config")
    return event


def export_events(events, meta):
    pass


jobs = {"refresh": lambda payload, meta: payload}
"""

EXPECTED = {
    "processed": True,
    "count": 1,
    "summary": "2 tags, total=1, abc=006",
    "tags": ["X", "Y"],
    "limits": [1, 4, 20, 2, 2],
    "types": [[1, 2], (3,), [1, 2], {"a": 1}],
    "day": "2024-01-02",
    "b64": "aGk=",
    "uuid": 36,
    "json": {"a": [1, 2]},
    "path": "pricing",
    "query": "q=a+b",
    "money": "3.30",
    "pct": "share=3%",
    "pow": 1024,
    "sqrt": 4.0,
    "grouped": {"a": ["ant", "asp"], "b": ["bee"]},
    "common": "a",
    "ordered": ["b", "a"],
    "chain": [1, 2],
    "reduced": 6,
    "letters": "abc",
    "visits": 2,
    "rand": True,
    "now": True,
    "text": "a+b.",
    "caught": "expected",
    "finally": True,
}


def test_ordinary_plugin_code_runs() -> None:
    plugin = compiled(ORDINARY)
    event = {
        "event": "$pageview",
        "timestamp": "2024-01-01T10:00:00+00:00",
        "properties": {"tags": ["x", "", "y"], "url": "https://example.com/pricing?a=1"},
    }
    out = call(plugin, "process_event", event, fake_meta())
    props = out["properties"]
    for key, value in EXPECTED.items():
        assert props[key] == value, key
    assert len(props["hash"]) == len(props["sig"]) == 8


def test_compiled_plugin_reports_functions_jobs_and_capabilities() -> None:
    plugin = compiled(ORDINARY)
    assert set(plugin.functions) == {"process_event", "export_events"}
    assert set(plugin.jobs) == {"refresh"}
    assert plugin.capabilities == frozenset({"process_event", "export_events", "jobs"})
    assert plugin.name == "probe"
    assert set(PLUGIN_FUNCTIONS) >= set(plugin.functions)


def test_sandbox_globals_are_visible_to_the_plugin() -> None:
    plugin = compile_plugin(
        {"plugin.py": "def f():\n    return fetch('u')"},
        plugin_name="p",
        sandbox_globals={"fetch": lambda url: f"fetched {url}"},
        limits=Limits(),
    )
    assert call(plugin, "f") == "fetched u"


def test_plugin_imports_its_own_files_sandboxed_alike() -> None:
    files = {"lib/helpers.py": "import json\ndef shout(s):\n    return json.dumps(s.upper())\n"}
    plugin = compiled("from lib.helpers import shout\ndef f(x):\n    return shout(x)", files=files)
    assert call(plugin, "f", "hi") == '"HI"'


def test_own_files_are_checked_for_forbidden_imports_too() -> None:
    with pytest.raises(PluginLoadError, match=r"lib.py:1: module 'os'"):
        compiled("import lib", files={"lib.py": "import os"})


def test_files_the_plugin_does_not_import_are_not_compiled() -> None:
    compiled("x = 1", files={"tests/test_plugin.py": "import os\n__file__"})


def test_syntax_error_names_plugin_file_and_line() -> None:
    with pytest.raises(PluginLoadError, match=r"plugin 'probe': plugin.py:2: SyntaxError"):
        compiled("x = 1\ndef broken(:\n")


def test_restriction_error_names_plugin_file_and_line() -> None:
    with pytest.raises(PluginLoadError, match=r"plugin 'probe': plugin.py:3: .*\"_secret\""):
        compiled("x = 1\n\n_secret = 2\n")


def test_error_in_module_body_fails_the_load_with_its_line() -> None:
    with pytest.raises(PluginLoadError, match=r"plugin.py:2: ZeroDivisionError"):
        compiled("x = 1\ny = 1 / 0\n")


def test_malformed_jobs_fail_the_load() -> None:
    with pytest.raises(PluginLoadError, match="jobs"):
        compiled("jobs = ['not', 'a', 'dict']")


def test_missing_main_fails_the_load() -> None:
    with pytest.raises(PluginLoadError, match=r"main module 'main\.py'"):
        compile_plugin(
            {"plugin.py": ""}, main="main.py", plugin_name="p", sandbox_globals={}, limits=Limits()
        )


def test_two_plugins_do_not_share_globals() -> None:
    source = "seen = []\ndef f(x):\n    seen.append(x)\n    return list(seen)"
    first, second = compiled(source), compiled(source)
    assert call(first, "f", 1) == [1]
    assert call(first, "f", 2) == [1, 2]
    assert call(second, "f", 3) == [3]


def test_seeding_random_in_one_plugin_does_not_affect_another() -> None:
    source = (
        "import random\ndef seed():\n    random.seed(7)\ndef draw():\n    return random.random()"
    )
    first, second = compiled(source), compiled(source)
    call(first, "seed")
    expected = call(first, "draw")
    call(first, "seed")
    call(second, "seed")
    call(second, "draw")
    assert call(first, "draw") == expected


def test_plugin_classes_are_private_to_the_plugin() -> None:
    source = (
        "class Box:\n    items = []\n"
        "def f(x):\n    Box.items = Box.items + [x]\n    return Box.items"
    )
    first, second = compiled(source), compiled(source)
    assert call(first, "f", 1) == [1]
    assert call(second, "f", 2) == [2]


def test_print_is_collected_not_written(capsys: pytest.CaptureFixture[str]) -> None:
    plugin = compiled("def f():\n    print('hello')\n    return 1")
    assert call(plugin, "f") == 1
    assert capsys.readouterr().out == ""

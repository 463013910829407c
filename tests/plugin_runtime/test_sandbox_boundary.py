"""Attacks that RestrictedPython cannot stop alone, against the process boundary.

Each family runs through the server's runtime with two teams loaded side by side (the
attacker's plugin and an ordinary one of another team, batches running at the same
time) and through the authoring kit, and asserts: stopped within its limit plus one
second (plus the start of a fresh sandbox), the worker alive and not grown, the other
team's results right and on time, and the failure recorded against the attacker only.
"""

from __future__ import annotations

import asyncio
import os
import socket
import textwrap
import time
from pathlib import Path

import pytest

from plugin_runtime.backends.http import UrllibHttpClient
from plugin_runtime.backends.memory import MemoryCaptureSink, memory_backends
from plugin_runtime.errors import PluginError
from plugin_runtime.extensions.metrics import MetricValues
from plugin_runtime.sandbox import call_monitor
from plugin_runtime.sandbox.limits import Limits
from plugin_runtime.sandbox.serving import BackendServer, Member, ScopeError
from plugin_runtime.testing import PluginHarness
from plugin_runtime.types import PluginConfigRef, PluginSource
from tests.plugin_runtime.runtime_fixtures import event, make_runtime, record

LIMIT = 2.0  # seconds per call
MEMORY = 64 * 1024 * 1024  # bytes per call
RESTART_ALLOWANCE = 1.5  # s: killing a sandbox, starting a fresh one, loading its configs
ATTACKER, VICTIM = 2, 3  # teams

C_LEVEL_HANGS = {
    "catastrophic_regex": 'import re\nre.match(r"(a+)+$", "a" * 40 + "b")',
    "quadratic_sum_of_lists": "sum([[1] * 10] * 200000, [])",
    # every key hashes to 0: one C call that probes quadratically
    "hash_collision_set": "keys = [i * (2 ** 61 - 1) for i in range(200000)]\nset(keys)",
}
ONE_CALL_MEMORY = {
    "translate_amplification": '("a" * 1000).translate({97: "b" * 1000000})',
    "join_amplification": '"-".join(["x" * 1000000] * 2000)',
    "replace_amplification": '("a" * 100000).replace("a", "b" * 100000)',
}
CRASHES = {
    "nested_map_chain": "x = [1]\nfor _ in range(300000):\n    x = map(abs, x)\nlist(x)",
    "nested_tuple_hash": "t = ()\nfor _ in range(1000000):\n    t = (t,)\nhash(t)",
}
ATTACKS = {**C_LEVEL_HANGS, **ONE_CALL_MEMORY, **CRASHES}

VICTIM_CODE = """
def process_event(event, meta):
    event["properties"]["victim_saw"] = meta.config.get("mark", "yes")
    return event
"""


def _attacker_code(body: str) -> str:
    indented = "\n".join("    " + line for line in body.splitlines())
    return f"def process_event(event, meta):\n{indented}\n    return event\n"


def _victim_event() -> dict[str, object]:
    return {**event(), "team_id": VICTIM}


async def _timed(awaitable: object) -> tuple[object, float]:
    started = time.monotonic()
    result = await awaitable  # type: ignore[misc]
    return result, time.monotonic() - started


@pytest.mark.parametrize("body", ATTACKS.values(), ids=ATTACKS.keys())
async def test_attack_through_the_server_costs_only_the_attacker(body: str) -> None:
    h = make_runtime(timeout=LIMIT, memory_bytes=MEMORY, threads=2)
    await h.runtime.load(
        [
            record(_attacker_code(body), id=10, name="attacker", team_id=ATTACKER),
            record(VICTIM_CODE, id=20, name="victim", team_id=VICTIM, plugin_id=61),
        ]
    )
    rss_before = call_monitor.current_rss()
    attack = asyncio.ensure_future(
        _timed(h.runtime.process_events(ATTACKER, [{**event(), "team_id": ATTACKER}]))
    )
    await asyncio.sleep(0.2)  # the attacker's call is running
    (victim_out,), victim_seconds = await _timed(
        h.runtime.process_events(VICTIM, [_victim_event()])
    )
    (attacked,), attack_seconds = await attack

    assert victim_out["properties"]["victim_saw"] == "yes"
    assert victim_seconds < 1.0
    assert attack_seconds < LIMIT + 1 + RESTART_ALLOWANCE
    assert attacked["properties"]["$plugins_failed"] == ["attacker (10)"]
    assert 10 in h.errors.errors and 20 not in h.errors.errors
    # the worker did not take the attacker's memory
    assert call_monitor.current_rss() - rss_before < 32 * 1024 * 1024
    # and the attacker's sandbox is back for its next batch
    (again,) = await h.runtime.process_events(VICTIM, [_victim_event()])
    assert again["properties"]["victim_saw"] == "yes"
    await h.runtime.close()


@pytest.mark.parametrize("body", ATTACKS.values(), ids=ATTACKS.keys())
def test_attack_through_the_authoring_kit_is_stopped_in_bounds(body: str) -> None:
    source = PluginSource(
        id=1, name="attacker", plugin_json={}, files={"plugin.py": _attacker_code(body)}
    )
    with PluginHarness(source, limits=Limits(timeout_seconds=LIMIT, memory_bytes=MEMORY)) as h:
        started = time.monotonic()
        with pytest.raises(PluginError):
            h.process_event({"event": "x", "properties": {}})
        assert time.monotonic() - started < LIMIT + 1 + RESTART_ALLOWANCE


def test_sandbox_process_runs_with_every_layer_and_nothing_of_the_worker() -> None:
    source = PluginSource(id=1, name="probe", plugin_json={}, files={"plugin.py": VICTIM_CODE})
    os.environ["WORKER_SECRET_FOR_TEST"] = "s3cret"
    try:
        with PluginHarness(source) as h:
            h.process_event({"event": "x", "properties": {}})
            pid = h._team.process.pid
            assert pid is not None
            status = Path(f"/proc/{pid}/status").read_text()
            environ = Path(f"/proc/{pid}/environ").read_bytes()
            fds = sorted(os.listdir(f"/proc/{pid}/fd"))
            net_ns = os.readlink(f"/proc/{pid}/ns/net")
            layers = h.sandbox_layers
    finally:
        del os.environ["WORKER_SECRET_FOR_TEST"]
    assert environ == b""  # no secret of the worker's environment
    assert "rlimits" in layers and "seccomp" in layers and "no-new-privs" in layers
    assert "\nSeccomp:\t2" in status and "\nNoNewPrivs:\t1" in status
    if os.geteuid() == 0:
        assert "uid-nobody" in layers
        assert "\nUid:\t65534\t65534\t65534\t65534" in status
    if "network-namespace" in layers:
        assert net_ns != os.readlink("/proc/self/ns/net")
    # stdin, stdout, stderr, the channel, the progress page, /proc/self/statm
    assert len(fds) <= 6


async def test_plugin_objects_never_run_in_the_worker() -> None:
    code = """
class Sticky(dict):
    def __eq__(self, other):
        while True:
            pass
    def __ne__(self, other):
        while True:
            pass
    def __contains__(self, key):
        while True:
            pass

class Odd:
    def __eq__(self, other):
        while True:
            pass
    def __ne__(self, other):
        while True:
            pass

def process_event(event, meta):
    out = Sticky(event)
    out["team_id"] = Odd()
    out["properties"] = Sticky({"odd": Odd()})
    return out
"""
    h = make_runtime(timeout=LIMIT)
    await h.runtime.load([record(code, id=10, name="sticky", team_id=ATTACKER)])
    started = time.monotonic()
    (out,) = await h.runtime.process_events(ATTACKER, [{**event(), "team_id": ATTACKER}])
    assert time.monotonic() - started < 1.0
    assert type(out) is dict and type(out["properties"]) is dict
    # the changed team_id was put back (and counts as a failure of the plugin)
    assert out["team_id"] == ATTACKER
    assert out["properties"]["$plugins_failed"] == ["sticky (10)"]
    await h.runtime.close()


async def test_memory_kept_across_calls_is_bounded_by_a_fresh_sandbox() -> None:
    h = make_runtime(timeout=LIMIT, memory_bytes=MEMORY)
    code = """
def process_event(event, meta):
    hoard = meta.global_.setdefault("hoard", [])
    hoard.append("x" * 20000000)
    event["properties"]["held"] = len(hoard)
    return event
"""
    await h.runtime.load([record(code, id=10, name="hoarder", team_id=ATTACKER)])
    rss_before = call_monitor.current_rss()
    team = h.runtime.sandbox(ATTACKER)
    held, peak = [], 0
    for _ in range(15):
        (out,) = await h.runtime.process_events(ATTACKER, [{**event(), "team_id": ATTACKER}])
        held.append(out["properties"].get("held"))
        peak = max(peak, team.process.rss())
    assert peak <= team.recycle_bytes + 2 * MEMORY
    assert held.count(1) >= 2  # started over at least once
    assert call_monitor.current_rss() - rss_before < 32 * 1024 * 1024
    await h.runtime.close()


async def test_fetch_to_internal_addresses_is_refused_through_the_server() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    code = f"""
def process_event(event, meta):
    out = []
    for url in ["http://127.0.0.1:{port}/", "http://localhost:{port}/",
                "http://2130706433:{port}/", "http://[::1]:{port}/",
                "http://169.254.169.254/latest/meta-data/"]:
        try:
            fetch(url, timeout=1)
            out.append("reached")
        except ConnectionError as e:
            out.append("refused" if "not a public address" in str(e) else str(e))
    event["properties"]["fetch"] = out
    return event
"""
    h = make_runtime(timeout=LIMIT, http=UrllibHttpClient())
    await h.runtime.load([record(code, id=10, name="prober", team_id=ATTACKER)])
    try:
        (out,) = await h.runtime.process_events(ATTACKER, [{**event(), "team_id": ATTACKER}])
    finally:
        listener.close()
        await h.runtime.close()
    assert out["properties"]["fetch"] == ["refused"] * 5


async def test_a_fetch_that_never_answers_ends_with_the_call() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts, never answers
    port = listener.getsockname()[1]
    code = f"""
def process_event(event, meta):
    fetch("http://127.0.0.1:{port}/", timeout=30)
    return event
"""
    h = make_runtime(timeout=LIMIT, http=UrllibHttpClient(allowed_hosts=["127.0.0.1"]))
    await h.runtime.load([record(code, id=10, name="waiter", team_id=ATTACKER)])
    try:
        (out,), seconds = await _timed(
            h.runtime.process_events(ATTACKER, [{**event(), "team_id": ATTACKER}])
        )
    finally:
        listener.close()
        await h.runtime.close()
    assert seconds < LIMIT + 1
    assert out["properties"]["$plugins_failed"] == ["waiter (10)"]


def test_a_sandbox_cannot_reach_another_teams_configs_even_when_compromised() -> None:
    """What the worker answers to requests a broken sandbox might send: everything is
    checked against the team's own configs, whatever the sandbox claims."""
    backends = memory_backends()
    cache, storage = backends.cache, backends.storage
    cache.set("@plugin-config/20/secret", '"other team"')
    storage.set(20, "secret", '"other team"')
    own = Member(PluginConfigRef(10, ATTACKER, 1, "attacker"), MetricValues({}), frozenset())
    server = BackendServer(backends, ATTACKER, lambda: {10: own}, lambda: 1.0, Limits())
    refused = [
        ("cache.get", ["@plugin-config/20/secret"]),
        ("cache.get", ["secret"]),
        ("cache.set", ["@plugin-config/20/secret", "x", None]),
        ("storage.get", [20, "secret"]),
        ("storage.set", [20, "secret", "x"]),
        ("errors.record", [20, {"message": "x"}]),
        ("jobs.enqueue", [20, "job", None, "2030-01-01T00:00:00+00:00"]),
        ("logs.write", [{"plugin_config_id": 20, "message": "x"}]),
    ]
    for name, args in refused:
        with pytest.raises(ScopeError):
            server(name, args)
    assert server("cache.get", ["@plugin-config/10/secret"]) is None
    # a captured event is the team's whatever the sandbox wrote in it
    server("captures.capture", [{"team_id": 20, "data": '{"team_id": 20, "event": "x"}'}])
    assert isinstance(backends.captures, MemoryCaptureSink)
    (message,) = backends.captures.messages
    assert message["team_id"] == ATTACKER and '"team_id": 2' in message["data"]
    assert cache.get("@plugin-config/20/secret") == '"other team"'
    assert storage.get(20, "secret") == '"other team"'


async def test_live_sandboxes_are_capped_and_the_least_recently_used_one_makes_room() -> None:
    h = make_runtime()
    h.runtime.pool.capacity = 2
    counting = """
def setup_plugin(meta):
    meta.global_["events"] = 0

def process_event(event, meta):
    meta.global_["events"] += 1
    event["properties"]["seen"] = meta.global_["events"]
    return event
"""
    teams = (2, 3, 4)
    await h.runtime.load(
        [record(counting, id=10 + t, name=f"p{t}", team_id=t, plugin_id=60 + t) for t in teams]
    )
    for team in teams:
        (out,) = await h.runtime.process_events(team, [{**event(), "team_id": team}])
        assert out["properties"]["seen"] >= 1
        assert h.runtime.pool.live <= 2
    # team 2 was used least recently: its sandbox made room, and it starts over when needed
    (out,) = await h.runtime.process_events(2, [{**event(), "team_id": 2}])
    assert out["properties"]["seen"] == 1
    assert h.runtime.pool.live <= 2
    system = [e.message for e in h.logs.read_logs(12, source="SYSTEM")]
    assert system[-1] == "plugin p2 loaded again in a fresh sandbox"
    await h.runtime.close()


def _attack_module(bodies: dict[str, str]) -> str:
    functions = []
    for i, body in enumerate(bodies.values()):
        indented = "\n".join("    " + line for line in textwrap.dedent(body).strip().splitlines())
        functions.append(f"def attack_{i}(x, meta):\n{indented}\n")
    calls = "\n".join(
        f"    try:\n        attack_{i}(None, meta)\n        out.append('ran')\n"
        f"    except Exception as e:\n        out.append('refused')"
        for i in range(len(bodies))
    )
    return (
        "import json\n"
        + "\n".join(functions)
        + f"\ndef process_event(event, meta):\n    out = []\n{calls}\n"
        + "    event['properties']['outcomes'] = out\n"
        + "    event['properties']['json_still'] = json.dumps([1])\n"
        + "    return event\n"
    )


async def test_library_attribute_attacks_through_the_server_reach_nothing() -> None:
    from tests.plugin_runtime.test_sandbox_modules import ATTRIBUTE_ATTACKS

    victim = """
import json, math, functools
def process_event(event, meta):
    event["properties"]["victim"] = [
        json.dumps({"a": 1}), math.sqrt(16), functools.reduce(max, [1, 3])
    ]
    return event
"""
    h = make_runtime(timeout=LIMIT)
    await h.runtime.load(
        [
            record(_attack_module(ATTRIBUTE_ATTACKS), id=10, name="attacker", team_id=ATTACKER),
            record(victim, id=20, name="victim", team_id=VICTIM, plugin_id=61),
        ]
    )
    (attacked,) = await h.runtime.process_events(ATTACKER, [{**event(), "team_id": ATTACKER}])
    (victim_out,) = await h.runtime.process_events(VICTIM, [_victim_event()])
    await h.runtime.close()
    assert attacked["properties"]["outcomes"] == ["refused"] * len(ATTRIBUTE_ATTACKS)
    assert attacked["properties"]["json_still"] == "[1]"
    assert victim_out["properties"]["victim"] == ['{"a": 1}', 4.0, 3]


def test_library_attribute_attacks_through_the_authoring_kit_reach_nothing() -> None:
    from tests.plugin_runtime.test_sandbox_modules import ATTRIBUTE_ATTACKS

    source = PluginSource(
        id=1,
        name="attacker",
        plugin_json={},
        files={"plugin.py": _attack_module(ATTRIBUTE_ATTACKS)},
    )
    with PluginHarness(source, limits=Limits(timeout_seconds=LIMIT)) as h:
        out = h.process_event({"event": "x", "properties": {}})
    assert out is not None
    assert out["properties"]["outcomes"] == ["refused"] * len(ATTRIBUTE_ATTACKS)


async def test_plugin_objects_passed_to_meta_never_reach_the_worker() -> None:
    code = """
class Odd:
    def __eq__(self, other):
        while True:
            pass

def process_event(event, meta):
    out = []
    for attempt in (
        lambda: meta.cache.lrem("k", 0, Odd()),
        lambda: meta.cache.set("k", Odd()),
        lambda: meta.storage.set("k", Odd()),
        lambda: meta.logger.info(Odd()),
        lambda: posthog.capture("x", {"odd": Odd()}),
    ):
        try:
            attempt()
            out.append("sent")
        except TypeError:
            out.append("TypeError")
    event["properties"]["meta"] = out
    return event
"""
    h = make_runtime(timeout=LIMIT)
    await h.runtime.load([record(code, id=10, name="odd", team_id=ATTACKER)])
    started = time.monotonic()
    (out,) = await h.runtime.process_events(ATTACKER, [{**event(), "team_id": ATTACKER}])
    assert time.monotonic() - started < 1.0
    await h.runtime.close()
    # refused as not JSON-like, or sent as text (the logger and capture render values)
    assert out["properties"]["meta"][:3] == ["TypeError"] * 3
    assert out["properties"]["meta"][3:] == ["sent", "sent"]

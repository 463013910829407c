"""Time and memory bounds fire with clean errors, and the process goes on afterwards."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from plugin_runtime.errors import PluginMemoryError, PluginTimeoutError
from plugin_runtime.isolation import PluginExecutor
from plugin_runtime.sandbox.limits import DEFAULT_MEMORY_BYTES, Limits, call_bounded
from tests.plugin_runtime.sandbox_fixtures import FAST, call, compiled, run_body

RUNAWAY = {
    "while_loop": "while True:\n    pass",
    "for_loop": "for i in range(10**6):\n    for j in range(10**6):\n        pass",
    "nested_function": "def spin():\n    while True:\n        pass\nspin()",
    "bare_except": (
        "while True:\n    try:\n        while True:\n            pass\n    except:\n        pass"
    ),
    "catch_base_exception_by_mro": (
        "k = Exception\nwhile True:\n    try:\n        while True:\n            pass\n"
        "    except k:\n        pass\n    except:\n        pass"
    ),
    "finally_loop": "try:\n    while True:\n        pass\nfinally:\n    while True:\n        pass",
    "generator_swallow": (
        "def g():\n    while True:\n        try:\n            yield 1\n        except:\n"
        "            pass\nfor v in g():\n    pass"
    ),
    "sleep": "import time\ntime.sleep(30)",
    # empty pieces: the list join builds stays small, so the time limit is what stops it
    "itertools_count_join": "import itertools\nreturn ''.join('' for i in itertools.count())",
    "itertools_repeat_join": "import itertools\nreturn ''.join(itertools.repeat('x'))",
    "iter_sentinel": "return list(iter(lambda: 1, 2))",
    "counter_elements": (
        "import collections\nreturn len(list(collections.Counter(a=10**9).elements()))"
    ),
}


@pytest.mark.parametrize("body", RUNAWAY.values(), ids=RUNAWAY.keys())
def test_runaway_call_times_out(body: str) -> None:
    limits = Limits(timeout_seconds=0.3)
    started = time.monotonic()
    with pytest.raises(PluginTimeoutError, match=r"0.3 seconds time limit \(at plugin.py:\d+\)"):
        run_body(body, None, None, limits=limits)
    assert time.monotonic() - started >= 0.3
    assert run_body("return x + 1", 1, None) == 2  # the thread goes on


def test_timeout_message_uses_singular_for_one_second() -> None:
    with pytest.raises(PluginTimeoutError, match="the 1 second time limit"):
        run_body("while True:\n    pass", None, None, limits=Limits(timeout_seconds=1))


def test_call_that_swallows_the_interruption_and_returns_still_times_out() -> None:
    body = "try:\n    while True:\n        pass\nexcept:\n    return 'escaped'"
    with pytest.raises(PluginTimeoutError):
        run_body(body, None, None, limits=Limits(timeout_seconds=0.2))


def test_module_body_past_the_time_limit_fails_the_load() -> None:
    with pytest.raises(PluginTimeoutError):
        compiled("while True:\n    pass", limits=Limits(timeout_seconds=0.2))


OVERSIZED = {
    "str_repeat": "return 'x' * 10**10",
    "str_repeat_reversed": "return 10**10 * 'x'",
    "bytes_repeat": "return b'x' * 10**10",
    "list_repeat": "return [0] * 10**9",
    "tuple_repeat": "return (0,) * 10**9",
    "repeat_inplace": "s = 'x'\ns *= 10**10\nreturn s",
    "concat_doubling": "s = 'x'\nwhile True:\n    s += s",
    "int_power": "return 10**10**8",
    "int_power_builtin": "return pow(10, 10**8)",
    "int_shift": "return 1 << 10**10",
    "int_square_loop": "n = 3\nwhile True:\n    n = n * n",
    "range_list": "return list(range(10**10))",
    "range_sum": "return sum(range(10**12))",
    "range_sorted": "return sorted(range(10**10))",
    "ljust": "return 'x'.ljust(10**10)",
    "center": "return 'x'.center(10**10)",
    "zfill": "return '1'.zfill(10**10)",
    "expandtabs": "return ('\\t' * 10**6).expandtabs(10**6)",
    "replace_amplify": "return ('x' * 10**5).replace('x', 'y' * 10**5)",
    "join_amplify": "return ('y' * 10**5).join(['x'] * 10**5)",
    "fstring_width": "return f'{x:>10000000000}'",
    "format_width": "return format(x, '>10000000000')",
    "percent_width": "return '%10000000000s' % 'x'",
    "percent_star_width": "return '%*s' % (10**10, 'x')",
    "bytes_zeroed": "return bytes(10**10)",
    "append_loop": "a = []\nwhile True:\n    a.append('x' * 10**5)",
    "dict_growth": "d = {}\ni = 0\nwhile True:\n    d[i] = 'x' * 1000\n    i += 1",
    "math_factorial": "import math\nreturn math.factorial(10**8)",
    "math_comb": "import math\nreturn math.comb(10**9, 10**8)",
    "math_prod": "import math\nreturn math.prod(range(1, 10**6))",
    "getrandbits": "import random\nreturn random.getrandbits(10**10)",
    "decimal_to_int": "import decimal\nreturn int(decimal.Decimal('1e100000000'))",
}


@pytest.mark.parametrize("body", OVERSIZED.values(), ids=OVERSIZED.keys())
def test_oversized_work_fails_with_a_memory_error(body: str) -> None:
    limits = Limits(timeout_seconds=5.0)
    with pytest.raises((PluginMemoryError, OverflowError, ArithmeticError)) as info:
        run_body(body, 1, None, limits=limits)
    if not isinstance(info.value, PluginMemoryError):
        # decimal and float limits refuse some of these first, which is also clean
        assert isinstance(info.value, ArithmeticError)
    assert run_body("return 'ok'", None, None) == "ok"


def test_memory_error_names_the_bound() -> None:
    with pytest.raises(PluginMemoryError, match="134,217,728 bytes"):
        run_body("return 'x' * 10**10", None, None, limits=Limits())
    assert DEFAULT_MEMORY_BYTES == 128 * 1024 * 1024


def test_a_smaller_memory_bound_is_applied() -> None:
    small = Limits(memory_bytes=1024 * 1024)
    with pytest.raises(PluginMemoryError):
        run_body("return 'x' * (2 * 1024 * 1024)", None, None, limits=small)
    assert len(run_body("return 'x' * 1000", None, None, limits=small)) == 1000


def test_plugin_exceptions_propagate_unchanged() -> None:
    with pytest.raises(KeyError):
        run_body("return {}['missing']", None, None)
    with pytest.raises(ValueError, match="mine"):
        run_body("raise ValueError('mine')", None, None)


def test_call_bounded_runs_host_functions_too() -> None:
    assert call_bounded(lambda a, b: a + b, 1, 2, limits=FAST) == 3


def test_limits_default_to_the_original_task_timeout() -> None:
    assert Limits().timeout_seconds == 30.0


def test_concurrent_calls_each_get_their_own_deadline() -> None:
    spinner = compiled(
        "def spin():\n    while True:\n        pass\ndef quick(x):\n    return x * 2"
    )
    outcome: dict[str, object] = {}

    def slow() -> None:
        try:
            call(spinner, "spin", limits=Limits(timeout_seconds=0.4))
        except PluginTimeoutError as exc:
            outcome["slow"] = exc

    thread = threading.Thread(target=slow)
    thread.start()
    results = [call(spinner, "quick", i, limits=Limits(timeout_seconds=5)) for i in range(1000)]
    thread.join()
    assert results[-1] == 1998
    assert isinstance(outcome["slow"], PluginTimeoutError)


def test_executor_survives_a_failing_batch() -> None:
    plugin = compiled("def spin():\n    while True:\n        pass\ndef ok(x):\n    return x")
    executor = PluginExecutor(threads=2)
    limits = Limits(timeout_seconds=0.2)

    async def scenario() -> list[object]:
        bad = executor.run(lambda: call(plugin, "spin", limits=limits))
        good = executor.run(lambda: [call(plugin, "ok", i, limits=limits) for i in range(100)])
        return await asyncio.gather(bad, good, return_exceptions=True)

    try:
        bad, good = asyncio.run(scenario())
    finally:
        executor.close()
    assert isinstance(bad, PluginTimeoutError)
    assert good == list(range(100))

"""The plugin sandbox: what stands between plugin code and the worker.

Two layers. In front, plugin source is compiled with RestrictedPython (`compiler.py`,
`policy.py`, `guards.py`), imports get vetted module proxies (`allowed_modules.py`) and
every call is bounded in time and memory inside its process (`limits.py`,
`call_monitor.py`, `memory_limit.py`). Behind it, that code runs in sandbox processes, not
in the worker: `protocol.py` is the whole contract between the two sides.
"""

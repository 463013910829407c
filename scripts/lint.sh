#!/usr/bin/env bash
# What the style promises, checked: ruff's rules and formatting everywhere, mypy --strict
# on the plugin runtime and the app (which it follows into topologies/ and schemas/).
# Exits non-zero on any finding. Needs the project installed (scripts/setup.sh).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy --strict plugin_runtime app

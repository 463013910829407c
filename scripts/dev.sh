#!/usr/bin/env bash
# The embedded mode on a fresh machine: installs the project, then `plugin-server dev`.
#
#   scripts/dev.sh           example plugin + example events, then a capture endpoint
#   scripts/dev.sh --once    the same, exiting after the processed events are shown
#
# Every option goes to `plugin-server dev` (see `.venv/bin/plugin-server dev --help`).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

scripts/setup.sh --no-test
exec .venv/bin/plugin-server dev "$@"

#!/usr/bin/env bash
# The test command: installs the project, starts the local servers, runs pytest.
#
#   scripts/test.sh [pytest arguments...]
#
# The servers stay up afterwards (later runs reuse them); `scripts/services.sh down` stops them.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

scripts/setup.sh
scripts/services.sh up
eval "$(scripts/services.sh env)"
exec .venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# Creates .venv with the machine's python3 and installs the project into it (editable).
#
#   scripts/setup.sh            the project with its test tools (`.[test]`)
#   scripts/setup.sh --no-test  the project alone
#
# Skips the install while pyproject.toml is unchanged since the last one (a stamp in .venv).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
STAMP="$VENV/.installed"

extras=test
case "${1:-}" in
"") ;;
--no-test) extras=none ;;
*)
  echo "usage: $0 [--no-test]" >&2
  exit 2
  ;;
esac

PYTHON="${PYTHON:-python3}"
command -v "$PYTHON" >/dev/null || {
  echo "setup: error: $PYTHON not found (Python 3.11 or newer is needed)" >&2
  exit 1
}
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "setup: error: $("$PYTHON" --version 2>&1) is too old; Python 3.11 or newer is needed" >&2
  exit 1
}

hash="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
if [[ -x "$VENV/bin/python" && -f "$STAMP" ]]; then
  read -r done_hash done_extras <"$STAMP" || true
  # an install with the test tools also serves --no-test
  if [[ "$done_hash" == "$hash" && ("$done_extras" == test || "$extras" == none) ]]; then
    exit 0
  fi
fi

started=$SECONDS
[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
target="."
[[ "$extras" == test ]] && target=".[test]"
echo "setup: installing the project ($target) into .venv" >&2
(
  cd "$ROOT"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$target"
) </dev/null
echo "$hash $extras" >"$STAMP"
echo "setup: done in $((SECONDS - started))s" >&2

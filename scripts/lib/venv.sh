# Sourced by the scripts: make sure .venv exists and holds the project (and extras, if asked).
# Usage: ensure_venv [EXTRA]
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.venv"
export PIP_DISABLE_PIP_VERSION_CHECK=1

ensure_venv() {
  local extra="${1:-}" python="${PYTHON:-python3}" stamp
  if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "cassette-proxy needs Python >= 3.11; '$python' is $("$python" --version 2>&1)." >&2
    echo "Set PYTHON=/path/to/python3.11 and run again." >&2
    exit 1
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    echo "Creating $VENV ..." >&2
    "$python" -m venv "$VENV"
  fi
  # Reinstall only when pyproject.toml changed since the last install of this flavour. The
  # plain flavour is also satisfied by the dev one, which installs the project and more.
  stamp="$VENV/.installed${extra:+-$extra}"
  if [ -z "$extra" ] && [ -f "$VENV/.installed-dev" ] && [ ! "$ROOT/pyproject.toml" -nt "$VENV/.installed-dev" ]; then
    return 0
  fi
  if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    echo "Installing cassette-proxy${extra:+ with [$extra]} into $VENV ..." >&2
    "$VENV/bin/python" -m pip install --quiet --upgrade pip >&2
    "$VENV/bin/python" -m pip install --quiet --editable "$ROOT${extra:+[$extra]}" >&2
    touch "$stamp"
  fi
}

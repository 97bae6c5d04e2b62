# Sourced by the scripts: make sure .venv exists and holds the project (and extras, if asked).
# Usage: ensure_venv [EXTRA]
# Safe to run from several scripts at once (./scripts/serve & ./scripts/test on a fresh clone):
# one installs, under a lock on .venv.lock beside .venv; the others wait, then find it done.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.venv"
VENV_LOCK="$ROOT/.venv.lock"
export PIP_DISABLE_PIP_VERSION_CHECK=1

# True if $1 (an install stamp) was made since pyproject.toml last changed.
_fresh() {
  [ -f "$1" ] && [ ! "$ROOT/pyproject.toml" -nt "$1" ]
}

# True if .venv holds the flavour asked for. The plain flavour is also satisfied by the dev
# one, which installs the project and more.
_installed() {
  local extra="$1"
  [ -x "$VENV/bin/python" ] || return 1
  if [ -z "$extra" ] && _fresh "$VENV/.installed-dev"; then
    return 0
  fi
  _fresh "$VENV/.installed${extra:+-$extra}"
}

ensure_venv() {
  local extra="${1:-}" python="${PYTHON:-python3}"
  if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "cassette-proxy needs Python >= 3.11; '$python' is $("$python" --version 2>&1)." >&2
    echo "Set PYTHON=/path/to/python3.11 and run again." >&2
    exit 1
  fi
  if _installed "$extra"; then
    return 0
  fi
  # Two pips installing into one .venv at once break each other (serve died with "cannot
  # import name 'distro' from 'pip._vendor'"). flock(2) on fd 9, taken by Python (macOS has no
  # flock command): the lock belongs to this shell's open file, so it outlives the Python that
  # took it, and the kernel drops it if the script dies.
  exec 9>"$VENV_LOCK"
  if ! "$python" -c 'import fcntl; fcntl.flock(9, fcntl.LOCK_EX | fcntl.LOCK_NB)' 2>/dev/null; then
    echo "Waiting for another script to finish installing into $VENV ..." >&2
    "$python" -c 'import fcntl; fcntl.flock(9, fcntl.LOCK_EX)'
  fi
  if ! _installed "$extra"; then  # the one we waited for may have installed it
    if [ ! -x "$VENV/bin/python" ]; then
      echo "Creating $VENV ..." >&2
      "$python" -m venv "$VENV"
    fi
    echo "Installing cassette-proxy${extra:+ with [$extra]} into $VENV ..." >&2
    "$VENV/bin/python" -m pip install --quiet --upgrade pip >&2
    "$VENV/bin/python" -m pip install --quiet --editable "$ROOT${extra:+[$extra]}" >&2
    touch "$VENV/.installed${extra:+-$extra}"
  fi
  exec 9>&-  # unlocked: the proxy or the tests run without holding it
}

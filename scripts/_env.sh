# Sourced by the other scripts: find Python 3.11+, make .venv, install OS packages.
# Everything the project needs installs from here; nothing is assumed present
# beyond Python 3.11+ and a C compiler.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${MAILSFLUX_VENV:-$ROOT/.venv}"

pick_python() {
  for py in "${PYTHON:-}" python3 python3.13 python3.12 python3.11; do
    [ -n "$py" ] || continue
    if command -v "$py" >/dev/null 2>&1 &&
       "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$py"; return 0
    fi
  done
  echo "mailsflux: need Python 3.11 or newer (set PYTHON=/path/to/python3.11)" >&2
  return 1
}

APT_UPDATED=0
apt_install() {
  # Install Debian packages when we are root and apt is here; else say what is missing.
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    if [ "$APT_UPDATED" = 0 ]; then apt-get update -qq >/dev/null; APT_UPDATED=1; fi
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  else
    echo "mailsflux: please install these packages: $*" >&2
    return 1
  fi
}

ensure_venv() {
  PY="$(pick_python)"
  if [ ! -x "$VENV/bin/python" ]; then
    if ! "$PY" -m venv "$VENV" 2>/dev/null; then
      rm -rf "$VENV"
      # Debian splits venv/ensurepip out of python3.
      apt_install "python3-venv" || apt_install "python$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')-venv"
      "$PY" -m venv "$VENV"
    fi
    "$VENV/bin/python" -m pip install -q --upgrade pip
  fi
  if ! "$PY" -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
    apt_install "python3-dev" || true
  fi
}

source_hash() {
  # What a build depends on: setup.py, pyproject.toml and the sources under
  # core/ and src/ (not what the build itself leaves there).
  {
    sha256sum setup.py pyproject.toml
    find core src \( -name __pycache__ -o -name '*.egg-info' \) -prune -o -type f \
      ! -name '*.c' ! -name '*.so' ! -name '*.html' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  } | sha256sum | cut -d' ' -f1
}

install_package() {
  # pip install ".[EXTRAS]" only when the sources or the extras changed since
  # the last install into this venv: a rebuild of the compiled modules takes
  # half a minute, the demo itself a second.
  local extras="${1:-}" stamp="$VENV/.mailsflux-install" want have=""
  want="$(source_hash) ${extras:-none}"
  [ -f "$stamp" ] && have="$(cat "$stamp")"
  # No extras asked for: an install with extras from the same sources will do.
  if { [ "$have" = "$want" ] || { [ -z "$extras" ] && [ "${have%% *}" = "${want%% *}" ]; }; } &&
     "$VENV/bin/python" -c 'import mailsflux.compose._template' 2>/dev/null; then
    return 0
  fi
  echo "installing mailsflux${extras:+[$extras]} into $VENV (builds the compiled modules) ..." >&2
  rm -f "$stamp"
  # setuptools reuses ./build and would ship modules that no longer exist.
  rm -rf build
  "$VENV/bin/python" -m pip install -q ".${extras:+[$extras]}"
  echo "$want" >"$stamp"
}

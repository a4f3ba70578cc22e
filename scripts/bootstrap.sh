#!/usr/bin/env bash
# Set up the workstation in .venv (Python 3.11, pinned by constraints.txt) and then:
#   scripts/bootstrap.sh demo          make a demo data set, index it, open the window (or run headless)
#   scripts/bootstrap.sh test [ARGS]   run the whole test suite (extra ARGS go to pytest)
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi

# Reinstall only when what defines the environment changed.
stamp=.venv/.workstation-installed
want=$(cat constraints.txt pyproject.toml plugins/*/pyproject.toml 2>/dev/null | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  plugin_args=()
  for project in plugins/*/pyproject.toml; do
    [ -e "$project" ] && plugin_args+=(-e "$(dirname "$project")")
  done
  .venv/bin/python -m pip install --quiet -c constraints.txt -e ".[test]" "${plugin_args[@]}"
  echo "$want" > "$stamp"
fi

case "${1:-}" in
  demo)
    shift
    exec .venv/bin/workstation demo "$@"
    ;;
  test)
    shift
    export QT_QPA_PLATFORM=${QT_QPA_PLATFORM:-offscreen}
    exec .venv/bin/python -m pytest "$@"
    ;;
  *)
    echo "usage: scripts/bootstrap.sh demo|test [ARGS...]" >&2
    exit 2
    ;;
esac

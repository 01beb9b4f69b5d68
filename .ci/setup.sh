#!/usr/bin/env bash
# Set up callrec on a fresh Debian/Ubuntu machine: the system packages it needs and a virtual
# environment with the project in .venv. Safe to run twice: it installs only what is missing.
#   bash .ci/setup.sh          what `callrec run` needs
#   bash .ci/setup.sh --test   plus what the test suite needs (PostgreSQL, Chromium, test tools)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(ffmpeg python3-venv python3-dev gcc)
extras=""
if [ "${1:-}" = "--test" ]; then
  packages+=(postgresql chromium pocketsphinx-testdata)
  extras="[test]"
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  # The tests start their own PostgreSQL cluster on a free port; Debian's default cluster on
  # port 5432 would only be a second, unused server.
  if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
    $sudo mkdir -p /etc/postgresql-common
    echo "create_main_cluster = false" | $sudo tee /etc/postgresql-common/createcluster.conf >/dev/null
  fi
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confold "${missing[@]}" >/dev/null
fi

python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "setup: callrec needs Python 3.11 or newer, found $(python3 --version)" >&2; exit 1; }
[ -x .venv/bin/python ] || python3 -m venv .venv
stamp=.venv/.callrec-installed$extras
if [ ! -e "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing the project into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".$extras"
  touch "$stamp"
fi

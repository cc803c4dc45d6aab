#!/usr/bin/env bash
# Debian packages that some checks use; everything else comes from PyPI into the venv.
#   docker-compose  validates docker-compose.yml with the real tool (the schema check needs none)
#   faketime        runs the suite under a clock a year ahead (`make test-future`)
#   chromium, chromium-driver  the operator console's browser tests (selenium drives them)
# As root with apt-get, missing packages are installed; otherwise this says what is missing and
# which checks skip without it, and exits 0 (nothing in `make test` requires them).
set -uo pipefail
missing=()
for pkg in "$@"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
     || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends "${missing[@]}"; }; then
    exit 0
  fi
  echo "warning: could not install ${missing[*]}; the checks that use them will skip" >&2
  exit 0
fi
echo "note: Debian packages not installed: ${missing[*]} (sudo apt-get install ${missing[*]});" \
     "the checks that use them skip" >&2
exit 0

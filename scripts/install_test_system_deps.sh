#!/usr/bin/env bash
# System packages the test suite needs beyond .venv: Debian's headless Chromium and its matching
# chromedriver (the human-study browser test drives a real Potato page with them).
# Idempotent and quick: installs only what is missing. Needs root (CI runs as root).
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install_test_system_deps: need root to install: ${missing[*]} (apt-get install -y ${missing[*]})" >&2
  exit 1
fi
echo "install_test_system_deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

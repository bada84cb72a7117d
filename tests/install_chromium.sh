#!/usr/bin/env bash
# The report tests drive a real headless browser: Debian's chromium. Installs it when it is missing
# (with sudo unless run as root); does nothing when a Chromium is already on the PATH.
set -euo pipefail
for name in chromium chromium-browser google-chrome; do
  if command -v "$name" >/dev/null 2>&1; then exit 0; fi
done
if ! command -v apt-get >/dev/null 2>&1; then
  echo "tests/install_chromium.sh: no Chromium and no apt-get: install Chromium by hand for the report tests" >&2
  exit 1
fi
sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null

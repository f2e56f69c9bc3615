#!/usr/bin/env bash
# Installs the Debian packages the test suite needs on a bare machine: PostgreSQL (the
# database every test runs against), protoc (to check the generated protocol code), and
# python3-grpcio/python3-protobuf (the Python model host's tests) and Chromium (the
# dashboard's browser test). Safe to run again.
set -euo pipefail
packages=(postgresql protobuf-compiler python3-grpcio python3-protobuf chromium)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "Missing packages: ${missing[*]}. Install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null

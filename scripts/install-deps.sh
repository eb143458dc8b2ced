#!/usr/bin/env bash
# Installs the Debian packages tunekit builds against. Idempotent: when every
# package is already present it touches nothing (no apt-get update, no root).
set -euo pipefail

packages=(
  cmake
  g++
  make
  libcli11-dev
  nlohmann-json3-dev
  libfmt-dev
  libgtest-dev
  libmuparser-dev
  zlib1g-dev
  libeigen3-dev
  libsqlite3-dev
  libtomlplusplus-dev
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"

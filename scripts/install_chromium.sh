#!/usr/bin/env bash
# Install a headless-capable Chromium for the book check (python -m jetcloud.book --check, tests/test_book.py).
# Debian/Ubuntu: apt-get install chromium (root, or sudo when available). Idempotent: does nothing when a
# Chromium/Chrome is already on PATH or JETCLOUD_CHROMIUM names one. Pass --with-driver to add chromium-driver
# (only needed for Selenium; jetcloud drives Chromium directly over the DevTools protocol).
set -euo pipefail

with_driver=0
case "${1:-}" in
    --with-driver) with_driver=1 ;;
    "") ;;
    -h | --help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "install_chromium.sh: unknown argument $1" >&2; exit 2 ;;
esac

if [[ -n "${JETCLOUD_CHROMIUM:-}" ]] && command -v "$JETCLOUD_CHROMIUM" >/dev/null; then
    echo "install_chromium.sh: using JETCLOUD_CHROMIUM=$JETCLOUD_CHROMIUM"; exit 0
fi
for name in chromium chromium-browser google-chrome google-chrome-stable; do
    if command -v "$name" >/dev/null && ((with_driver == 0)); then
        echo "install_chromium.sh: $(command -v "$name") already installed"; exit 0
    fi
done

if ! command -v apt-get >/dev/null; then
    echo "install_chromium.sh: no apt-get here; install Chromium with your package manager (or set JETCLOUD_CHROMIUM)" >&2
    exit 1
fi
sudo=()
if ((EUID != 0)); then
    command -v sudo >/dev/null || { echo "install_chromium.sh: needs root or sudo for apt-get" >&2; exit 1; }
    sudo=(sudo)
fi
packages=(chromium)
((with_driver)) && packages+=(chromium-driver)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq "${packages[@]}" \
    || "${sudo[@]}" apt-get install -y -qq chromium-browser  # Ubuntu's package name
echo "install_chromium.sh: installed $(command -v chromium || command -v chromium-browser)"

#!/usr/bin/env bash
# Installs a software WebGPU adapter on a Debian 12 machine without a GPU:
# Mesa lavapipe (CPU Vulkan) from bookworm-backports, since bookworm's own Mesa is too old for Dawn.
# With --browser, also Debian's Chromium (WebGPU on its bundled SwiftShader) for the browser tests.
# Idempotent: does nothing that is already done.
set -euo pipefail
want_browser=0
[ "${1:-}" = "--browser" ] && want_browser=1
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

src=/etc/apt/sources.list.d/bookworm-backports.sources
if [ ! -f "$src" ]; then
  $SUDO tee "$src" >/dev/null <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi

need=()
lvp=$(ls /usr/share/vulkan/icd.d/lvp_icd*.json 2>/dev/null | head -n1 || true)
ver=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)
case "$ver" in *bpo*) ;; *) need+=(mesa-vulkan-drivers libvulkan1) ;; esac
[ -z "$lvp" ] && need+=(mesa-vulkan-drivers libvulkan1)
if [ "$want_browser" = 1 ] && ! command -v chromium >/dev/null; then need+=(chromium); fi

if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
  if [ "$want_browser" = 1 ] && ! command -v chromium >/dev/null; then
    $SUDO apt-get install -y -qq chromium >/dev/null
  fi
fi
echo "software WebGPU: mesa-vulkan-drivers $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)" \
  "$([ "$want_browser" = 1 ] && echo "; chromium $(chromium --version 2>/dev/null | awk '{print $2}')")"

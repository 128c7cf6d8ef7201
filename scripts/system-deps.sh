#!/usr/bin/env bash
# Installs the Debian packages that the desktop client and the test suite need, when they are missing.
# Qt's bundled libraries need the X/EGL/font libraries; the interop tests drive irssi and weechat in tmux;
# the screenshot is taken under xvfb; the bench smoke test compares with ngircd; systemd-analyze
# checks the systemd unit in deploy/; the web client's tests drive Debian's chromium through
# Playwright (Playwright's own browser download is never used); the storage tests start a
# throwaway PostgreSQL cluster from the postgresql package.
set -eu
packages=(
  libegl1 libgl1 libfontconfig1 libdbus-1-3 libglib2.0-0 libxkbcommon0
  libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1
  libxcb-render-util0 libxcb-xinerama0 libxcb-shape0
  xvfb xauth tmux irssi weechat-curses ngircd systemd chromium postgresql
)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: not a Debian system; please install: ${missing[*]}" >&2
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "system-deps: run as root to install: ${missing[*]}" >&2; exit 0
  fi
fi
echo "system-deps: installing ${missing[*]}"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"

#!/usr/bin/env bash
# Makes .venv-pypy: Debian's PyPy (7.3, Python 3.9) with Twisted, to bench the daemon under PyPy.
# The daemon runs from the checkout (PYTHONPATH); only Twisted is installed into this venv.
set -eu
if ! command -v pypy3 >/dev/null 2>&1 || ! dpkg -s pypy3-venv >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q pypy3 pypy3-venv
fi
pypy3 -m venv .venv-pypy
.venv-pypy/bin/python -m pip install -q twisted

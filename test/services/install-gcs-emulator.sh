#!/bin/sh
# Installs firebase-tools (which contains Google's Cloud Storage emulator) into a cache folder
# outside the project's dependencies. It compiles re2 and takes a few minutes, so it runs once
# per machine; later runs find the installed copy and return at once.
set -eu

cache="${FAIRING_TEST_CACHE:-$HOME/.cache/fairing-test}"
prefix="$cache/firebase-tools"
marker="$prefix/node_modules/firebase-tools/package.json"

if [ -f "$marker" ]; then
  echo "firebase-tools already installed in $prefix"
  exit 0
fi

mkdir -p "$prefix"
echo "installing firebase-tools@15 into $prefix (takes a few minutes)"
npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error firebase-tools@15
test -f "$marker"
echo "firebase-tools installed in $prefix"

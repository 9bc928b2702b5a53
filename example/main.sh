#!/bin/sh
# Prints the greeting from data/greeting.txt (beside this script), the working directory and
# FAIRING_RUNTIME, which fairing sets to 1 in every image it builds.
set -eu
case "$0" in
  */*) here="${0%/*}" ;;
  *) here=. ;;
esac
cat "$here/data/greeting.txt"
echo "working directory: $(pwd)"
echo "FAIRING_RUNTIME=${FAIRING_RUNTIME:-}"

#!/bin/sh
# Prints the Debian packages that ship the shared libraries BINARY links
# against, one per line: the runtime image installs exactly these.
# Used by the Dockerfile's build stage; fails if a library has no package.
# Usage: runtime-packages.sh BINARY
set -eu
bin=$1
deps=$(ldd "$bin")
if echo "$deps" | grep -q 'not found'; then
  echo "runtime-packages: unresolved libraries:" >&2
  echo "$deps" | grep 'not found' >&2
  exit 1
fi
out=$(mktemp)
for lib in $(echo "$deps" | awk '$2 == "=>" && $3 ~ /^\// {print $3}'); do
  real=$(realpath "$lib")
  pkg=
  # dpkg records some files under /lib and some under /usr/lib (merged /usr).
  for f in "$lib" "$real" "${lib#/usr}" "${real#/usr}" "/usr${lib#/usr}" "/usr${real#/usr}"; do
    pkg=$(dpkg-query -S "$f" 2>/dev/null | head -n1 | sed 's/[:,] .*//') && [ -n "$pkg" ] && break
  done
  if [ -z "$pkg" ]; then
    echo "runtime-packages: no Debian package ships $lib" >&2
    exit 1
  fi
  echo "$pkg" >>"$out"
done
sort -u "$out"
rm -f "$out"

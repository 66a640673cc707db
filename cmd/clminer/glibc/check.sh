#!/usr/bin/env bash
# check.sh BIN: the portable build's promise (see compat.h), checked.
#  1. objdump -T: no glibc symbol version above $GLIBC_MAX.
#  2. with $OLD_GLIBC (a folder holding an unpacked libc6 .deb of an older
#     glibc): --version, devices and selftest --device cpu under that loader.
set -euo pipefail
bin=$1
if [ "${PORTABLE:-0}" != 1 ]; then
  echo "glibc-check: not a portable build (PORTABLE=0 or not x86-64 glibc): skipped"
  exit 0
fi
max=${GLIBC_MAX:?}
need=$(objdump -T "$bin" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
if [ "$(printf '%s\n%s\n' "$need" "$max" | sort -V | tail -1)" != "$max" ]; then
  echo "glibc-check: $bin needs GLIBC_$need, above $max:"
  objdump -T "$bin" | awk -v v="GLIBC_$need" 'index($0, "(" v ")")'
  echo "glibc-check: bind those symbols to their old version in cmd/clminer/glibc/compat.h"
  exit 1
fi
echo "glibc-check: $bin needs at most GLIBC_$need (limit $max)"
[ -n "${OLD_GLIBC:-}" ] || exit 0
libdir=$OLD_GLIBC/lib/x86_64-linux-gnu
ld=$(ls "$libdir"/ld-linux-x86-64.so.2 "$OLD_GLIBC"/lib64/ld-linux-x86-64.so.2 2>/dev/null | head -1)
[ -n "$ld" ] || { echo "glibc-check: no ld-linux-x86-64.so.2 under $OLD_GLIBC"; exit 1; }
old=$("$ld" --library-path "$libdir" "$libdir/libc.so.6" 2>/dev/null | head -1 || true)
run() { "$ld" --library-path "$libdir" "$bin" "$@"; }
for args in "--version" "devices" "selftest --device cpu"; do
  # shellcheck disable=SC2086
  if ! out=$(run $args 2>&1); then
    echo "glibc-check: '$args' fails under ${old:-the loader in $OLD_GLIBC}:"
    echo "$out" | tail -5
    exit 1
  fi
done
echo "glibc-check: --version, devices and selftest --device cpu pass under: ${old:-$ld}"

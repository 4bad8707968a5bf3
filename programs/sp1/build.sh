#!/usr/bin/env bash
# Builds the SP1 guests of this folder (each <name>.c except rt.c) into <name>.elf beside it, with
# Debian's clang and lld (`apt-get install clang lld`): RV64IM, LP64, no C extension, linked by
# guest.ld. Usage: programs/sp1/build.sh [name.c ...] (default: every guest here).
set -euo pipefail
cd "$(dirname "$0")"
CC=${CC:-clang}
LD=${LD:-ld.lld}
command -v "$CC" > /dev/null && command -v "$LD" > /dev/null \
  || { echo "build.sh needs $CC and $LD: apt-get install -y clang lld" >&2; exit 1; }
CFLAGS=(--target=riscv64-unknown-elf -march=rv64im -mabi=lp64 -mcmodel=medany -O2
  -ffreestanding -fno-builtin -fno-stack-protector -fno-pic -nostdlib -nostdlibinc
  -isystem "$("$CC" -print-resource-dir)/include" -Wall -Wextra -Werror)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$CC" "${CFLAGS[@]}" -c start.S -o "$tmp/start.o"
"$CC" "${CFLAGS[@]}" -c rt.c -o "$tmp/rt.o"
if [ $# -eq 0 ]; then set -- $(ls *.c | grep -vx rt.c); fi
for src in "$@"; do
  name=${src%.c}
  "$CC" "${CFLAGS[@]}" -c "$src" -o "$tmp/$name.o"
  "$LD" -nostdlib -static --no-relax -T guest.ld "$tmp/start.o" "$tmp/rt.o" "$tmp/$name.o" \
    -o "$name.elf"
  echo "built programs/sp1/$name.elf ($(stat -c %s "$name.elf") bytes)"
done

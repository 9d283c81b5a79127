#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Print the path of a Python interpreter >= 3.12, or explain why none was found.
set -u
ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }
# 3.12 first: it is the version every binary wheel we need is built for.
candidates=(python3.12 python3.13 python3)
for c in "${candidates[@]}"; do
  p=$(command -v "$c" 2>/dev/null) && ok "$p" && { echo "$p"; exit 0; }
done
root=${PYENV_ROOT:-$HOME/.pyenv}
for p in $(ls -d "$root"/versions/3.12*/bin/python3 "$root"/versions/3.1[3-9]*/bin/python3 2>/dev/null); do
  ok "$p" && { echo "$p"; exit 0; }
done
echo "error: no Python >= 3.12 found (tried python3.13, python3.12, python3 and $root/versions)." >&2
echo "Install one, or run: make PYTHON=/path/to/python3.12 test" >&2
exit 1

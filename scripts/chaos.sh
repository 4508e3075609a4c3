#!/usr/bin/env bash
# peekd killed with SIGKILL under load, then checked against what it acknowledged.
#
#   scripts/chaos.sh          100 kills (about 2.5 minutes on a 2-core machine)
#   scripts/chaos.sh 5        a short run (about 12 seconds)
#   scripts/chaos.sh 100 --seed 7 --keep    more options: python3 scripts/chaos.py --help
#
# Builds peekd in release mode, then runs scripts/chaos.py: technicians post
# notes and viewers resume with random disconnects while peekd is killed and
# restarted on the same data directory. Prints one line of counts and exits
# non-zero if an acknowledged note was lost or stored twice, or a viewer saw
# a seq gap or duplicate. Not part of scripts/test.sh (too long for CI).
set -euo pipefail
cd "$(dirname "$0")/.."
kills="${1:-100}"
shift || true
swift build -c release --product peekd >&2
exec python3 scripts/chaos.py --peekd .build/release/peekd --kills "$kills" "$@"

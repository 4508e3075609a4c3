#!/usr/bin/env bash
# The whole test suite: the command the README gives a newcomer and the one
# .ci/run calls. Stages: build, unit + integration tests (swift test), then
# the short fuzz pass, then the stages that need outside programs, each
# installing what it lacks.
# Every stage runs even if an earlier one failed (except those that need a
# binary the build did not make); the last line is "N passed, M failed"
# over the stages, and the exit status is 1 if any failed.
#
#   PEEK_AUTOBAHN_FULL=1   Autobahn with 9.* (limits/performance) and
#                          12.*/13.* (permessage-deflate): ~15 min instead of ~15 s
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
# In CI the shared tools are a copy beside the clone (PEEK_SHARED overrides).
SHARED="${PEEK_SHARED:-$ROOT/../shared}"

PASSED=0
FAILED=0
FAILED_STAGES=()
# Test counts over all stages, for the closing line.
TESTS_PASSED=0
TESTS_FAILED=0
TESTS_SKIPPED=0
# count PASSED FAILED: add a stage's own test counts.
count() { TESTS_PASSED=$((TESTS_PASSED + $1)); TESTS_FAILED=$((TESTS_FAILED + $2)); }
# count_closing_line LOG: add the counts of a stage's own "N passed, M
# failed" line; a stage that never printed one counts as one failure.
count_closing_line() {
  local counts n f
  counts="$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$1" | tail -1)"
  if [[ -n "$counts" ]]; then read -r n f <<<"$counts"; count "$n" "$f"; else count 0 1; fi
}
ECHO_PID=""
trap '[[ -n "$ECHO_PID" ]] && kill "$ECHO_PID" 2>/dev/null' EXIT
stage() { printf '\n=== %s\n' "$*"; }
# record NAME STATUS
record() {
  if [[ "$2" -eq 0 ]]; then
    PASSED=$((PASSED + 1))
    printf -- '--- %s: passed\n' "$1"
  else
    FAILED=$((FAILED + 1))
    FAILED_STAGES+=("$1")
    printf -- '--- %s: FAILED (status %s)\n' "$1" "$2"
  fi
}

# The build links libpq (the PostgreSQL store), and the store tests start a
# real PostgreSQL 15 server: both come from Debian, installed when missing.
postgres_deps() {
  if [[ ! -x /usr/lib/postgresql/15/bin/initdb ]] || ! pkg-config --exists libpq; then
    echo "installing postgresql and libpq-dev (Debian)"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq postgresql libpq-dev; } >/tmp/peekd-apt-postgres.log 2>&1 \
      || { tail -20 /tmp/peekd-apt-postgres.log; return 2; }
  fi
}

stage "postgresql (server for the store tests, libpq for the build)"
postgres_deps 2>&1
record "postgresql" "${PIPESTATUS[0]}"

stage "swift build"
swift build 2>&1 | grep -v -e ': warning:' -e '^ *|' -e '^ *[0-9]* |' -e '^\s*$' | tail -20
record "swift build" "${PIPESTATUS[0]}"
# The subprocess tests (SIGTERM drain) run this binary.
export PEEKD_BIN="$ROOT/.build/debug/peekd"

stage "swift test"
swift test --disable-swift-testing 2>&1 | tee /tmp/peekd-swift-test.log
status=${PIPESTATUS[0]}
summary_line="$(grep -E "^\s*Executed [0-9]+ tests?" /tmp/peekd-swift-test.log | tail -1)"
# XCTest: "Executed N tests, with [S tests skipped and ]F failures (...)",
# "test" and "failure" singular for one.
executed="$(sed -E -n 's/.*Executed ([0-9]+) tests?, with (([0-9]+) tests? skipped and )?([0-9]+) failures?[ .(].*/\1 \4 \3/p' <<<"$summary_line")"
if [[ -n "$executed" ]]; then
  read -r n f s <<<"$executed"
  s=${s:-0}
  count $((n - f - s)) "$f"
  TESTS_SKIPPED=$((TESTS_SKIPPED + s))
  [[ "$status" -ne 0 && "$f" -eq 0 ]] && count 0 1
else
  count 0 1
fi
record "swift test" "$status"

# The libFuzzer targets (Fuzz/, FUZZING.md), each a few seconds from its
# seed corpus: a parser change that crashes, hangs or blows up on them fails
# here. About 3 minutes from a cold build on 2 cores; PEEK_FUZZ_SECONDS sets
# the time per target (the long campaigns are `scripts/fuzz.sh all 600`).
fuzz_short() {
  scripts/fuzz.sh all "${PEEK_FUZZ_SECONDS:-4}"
}

stage "fuzz (scripts/fuzz.sh all ${PEEK_FUZZ_SECONDS:-4})"
fuzz_short 2>&1 | tee /tmp/peekd-fuzz.log
status=${PIPESTATUS[0]}
count_closing_line /tmp/peekd-fuzz.log
record "fuzz" "$status"

# Autobahn|Testsuite fuzzingclient against `peekd echo`: the same network and
# WebSocket stack as the server, every path an echo endpoint.
autobahn() {
  if [[ ! -x "$PEEKD_BIN" ]]; then
    echo "no $PEEKD_BIN (the build failed)"
    return 2
  fi
  local run="$SHARED/tools/autobahn/run.sh"
  if [[ ! -x "$run" ]]; then
    echo "no $run: the shared tools belong beside the repository"
    return 2
  fi
  local data log pid port status
  data="$(mktemp -d /tmp/peekd-echo.XXXXXX)"
  log="$data/echo.log"
  # Port 0: the kernel picks a free port, and the ready line says which.
  "$PEEKD_BIN" echo --port 0 --data "$data" >"$log" 2>&1 &
  pid=$!
  ECHO_PID=$pid
  port=""
  for _ in $(seq 1 200); do
    port="$(sed -n 's/^peekd ready plain=[^ ]*:\([0-9][0-9]*\) .*/\1/p' "$log" | head -1)"
    [[ -n "$port" ]] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if [[ -z "$port" ]]; then
    echo "peekd echo did not get ready; its output:"
    sed 's/^/  | /' "$log"
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    rm -rf "$data"
    return 2
  fi
  echo "$(grep -m1 ready "$log")"
  if [[ "${PEEK_AUTOBAHN_FULL:-0}" == 1 ]]; then
    AUTOBAHN_DEFLATE=1 AUTOBAHN_PERF=1 "$run" "ws://127.0.0.1:$port"
  else
    "$run" "ws://127.0.0.1:$port"
  fi
  status=$?
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  ECHO_PID=""
  rm -rf "$data"
  return "$status"
}

stage "autobahn (peekd echo)$([[ "${PEEK_AUTOBAHN_FULL:-0}" == 1 ]] && echo ', full: 9.*, 12.*, 13.*')"
autobahn 2>&1 | tee /tmp/peekd-autobahn.log
status=${PIPESTATUS[0]}
counts="$(sed -n 's/^autobahn: \([0-9]*\) ok, \([0-9]*\) failed.*/\1 \2/p' /tmp/peekd-autobahn.log | tail -1)"
if [[ -n "$counts" ]]; then read -r n f <<<"$counts"; count "$n" "$f"; else count 0 1; fi
record "autobahn" "$status"

# The mock server the client is developed against, checked against
# protocol.md over real sockets (standard library only, a few seconds).
stage "mock (client/test/mock_peekd_test.py)"
python3 client/test/mock_peekd_test.py 2>&1 | tee /tmp/peekd-mock.log
status=${PIPESTATUS[0]}
count_closing_line /tmp/peekd-mock.log
record "mock" "$status"

# The browser Peek in a real headless Chromium (Debian's chromium and
# chromedriver, driven by Selenium), against a real `peekd --demo`.
browser_deps() {
  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    echo "installing chromium and chromium-driver (Debian)"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq chromium chromium-driver; } >/tmp/peekd-apt.log 2>&1 \
      || { tail -20 /tmp/peekd-apt.log; return 2; }
  fi
  if ! python3 -c 'import selenium' 2>/dev/null; then
    echo "installing selenium (PyPI)"
    python3 -m pip install -q selenium >/tmp/peekd-pip.log 2>&1 || { tail -20 /tmp/peekd-pip.log; return 2; }
  fi
}

browser() {
  [[ -x "$PEEKD_BIN" ]] || { echo "no $PEEKD_BIN (the build failed)"; return 2; }
  browser_deps || return 2
  python3 client/test/browser_test.py --peekd "$PEEKD_BIN"
}

stage "browser (headless Chromium, client/test/browser_test.py)"
browser 2>&1 | tee /tmp/peekd-browser.log
status=${PIPESTATUS[0]}
count_closing_line /tmp/peekd-browser.log
record "browser" "$status"

printf '\n=== summary\n'
echo "stages passed: $PASSED of $((PASSED + FAILED))"
for name in "${FAILED_STAGES[@]}"; do echo "failed stage: $name"; done
# The plain closing line, over every test of every stage.
if [[ "$TESTS_SKIPPED" -gt 0 ]]; then echo "$TESTS_PASSED passed, $TESTS_FAILED failed, $TESTS_SKIPPED skipped"; else echo "$TESTS_PASSED passed, $TESTS_FAILED failed"; fi
[[ "$FAILED" -eq 0 && "$TESTS_FAILED" -eq 0 ]]

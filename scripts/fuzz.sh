#!/usr/bin/env bash
# Builds the libFuzzer targets in Fuzz/Targets and runs them (FUZZING.md).
#
#   scripts/fuzz.sh [options] [TARGET|all] [SECONDS]
#
# SECONDS (default 10) is each target's -max_total_time. Targets run one
# after another at nice 10, each on a scratch copy of its seed corpus
# (Fuzz/corpus/TARGET), so the repository is not touched unless
# --update-corpus is given. A crash, a hang over -timeout (10 s per input)
# or more than -rss_limit_mb (2048) fails the target; its reproducer is
# kept in .build-fuzz/findings/TARGET/ and printed with a one-line summary.
# Exit status 1 if any target failed. The last line is "N passed, M failed"
# over the targets run.
#
#   --build-only       build, run nothing
#   --update-corpus    merge what the run found into Fuzz/corpus/TARGET
#                      (libFuzzer -merge=1: only inputs adding coverage)
#   --list             print the target names
#   --cpu-seconds N    stop each target gracefully (SIGUSR1, final stats
#                      printed) once it has used N CPU seconds, whatever the
#                      wall time; SECONDS then only caps the wall time. For
#                      campaigns on a shared machine, where wall time says
#                      little about how much fuzzing was done.
#
# Environment: PEEK_FUZZ_NICE (default 10), PEEK_FUZZ_BUILD (build folder, default .build-fuzz),
# PEEK_FUZZ_JOBS (parallel compiles, default 2), PEEK_FUZZ_SANITIZE (default
# fuzzer,address), PEEK_FUZZ_FLAGS (extra libFuzzer flags, e.g. -jobs=2).
#
# The modules are compiled straight from their source folders with swiftc
# (whole-module, -O, -enable-testing so targets can reach internal entry
# points with @testable import), into static libraries; each target links
# them. Only what changed is rebuilt.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
BUILD="${PEEK_FUZZ_BUILD:-$ROOT/.build-fuzz}"
JOBS="${PEEK_FUZZ_JOBS:-2}"
SANITIZE="${PEEK_FUZZ_SANITIZE:-fuzzer,address}"
EXTRA_FLAGS="${PEEK_FUZZ_FLAGS:-}"
NICE="${PEEK_FUZZ_NICE:-10}"
CPU_BUDGET=""

BUILD_ONLY=0
UPDATE_CORPUS=0
ARGS=()
EXPECT_CPU=0
for arg in "$@"; do
  if [[ $EXPECT_CPU -eq 1 ]]; then CPU_BUDGET="$arg"; EXPECT_CPU=0; continue; fi
  case "$arg" in
    --cpu-seconds) EXPECT_CPU=1 ;;
    --build-only) BUILD_ONLY=1 ;;
    --update-corpus) UPDATE_CORPUS=1 ;;
    --list) for f in Fuzz/Targets/*.swift; do basename "$f" .swift; done; exit 0 ;;
    -h|--help) sed -n '2,33p' "$0"; exit 0 ;;
    *) ARGS+=("$arg") ;;
  esac
done
WHICH="${ARGS[0]:-all}"
SECONDS_EACH="${ARGS[1]:-10}"

if [[ "$WHICH" == all ]]; then
  TARGETS=()
  for f in Fuzz/Targets/*.swift; do TARGETS+=("$(basename "$f" .swift)"); done
else
  [[ -f "Fuzz/Targets/$WHICH.swift" ]] || { echo "no target $WHICH (scripts/fuzz.sh --list)"; exit 2; }
  TARGETS=("$WHICH")
fi

# Module -> the modules it imports (Package.swift), in build order.
MODULES=(PeekCrypto PeekCalendar PeekCore PeekWebSocket PeekMail PeekTLS PeekHTTP)
declare -A DEPS=(
  [PeekCrypto]="" [PeekCalendar]="" [PeekCore]="PeekCrypto PeekCalendar"
  [PeekWebSocket]="PeekCrypto" [PeekMail]="PeekCrypto PeekCalendar" [PeekTLS]="PeekCrypto"
  [PeekHTTP]="PeekCore PeekCrypto PeekCalendar"
)
# Static linking: dependents before what they use.
LINK_LIBS=(-lPeekHTTP -lPeekMail -lPeekWebSocket -lPeekTLS -lPeekCore -lPeekCalendar -lPeekCrypto -lssl -lcrypto -lz -lm)
SWIFT_FLAGS=(-swift-version 6 -O -sanitize="$SANITIZE" -I "$BUILD/modules"
             -I "$ROOT/Sources/COpenSSL" -I "$ROOT/Sources/CZlib")

mkdir -p "$BUILD/modules" "$BUILD/lib" "$BUILD/bin" "$BUILD/logs" "$BUILD/findings"
# A change of sanitizers invalidates everything built.
if [[ "$(cat "$BUILD/flags" 2>/dev/null)" != "$SANITIZE" ]]; then
  rm -f "$BUILD"/lib/*.a "$BUILD"/bin/*
  echo "$SANITIZE" >"$BUILD/flags"
fi

# newer OUTPUT INPUT...: true if OUTPUT is missing or any input is newer.
stale() {
  local output="$1"; shift
  [[ -e "$output" ]] || return 0
  [[ -n "$(find "$@" -newer "$output" -print -quit 2>/dev/null)" ]]
}

build_module() {
  local m="$1" lib="$BUILD/lib/lib$1.a" inputs=("$ROOT/Sources/$1") d
  for d in ${DEPS[$m]}; do inputs+=("$BUILD/lib/lib$d.a"); done
  stale "$lib" "${inputs[@]}" || return 0
  if ! swiftc -module-name "$m" -parse-as-library -wmo -enable-testing "${SWIFT_FLAGS[@]}" \
      -emit-module -emit-module-path "$BUILD/modules/$m.swiftmodule" \
      -emit-library -static -o "$lib" "$ROOT/Sources/$m"/*.swift >"$BUILD/logs/$m.log" 2>&1; then
    echo "building $m failed:"; grep -E 'error:' "$BUILD/logs/$m.log" | head -20
    rm -f "$lib"
    return 1
  fi
}

build_target() {
  local t="$1" bin="$BUILD/bin/fuzz-$1"
  stale "$bin" "Fuzz/Targets/$t.swift" Fuzz/Support "$BUILD"/lib/*.a || return 0
  if ! swiftc -module-name "fuzz_$t" -parse-as-library "${SWIFT_FLAGS[@]}" -L "$BUILD/lib" \
      "Fuzz/Targets/$t.swift" Fuzz/Support/*.swift "${LINK_LIBS[@]}" -o "$bin" >"$BUILD/logs/fuzz-$t.log" 2>&1; then
    echo "building target $t failed:"; grep -E 'error:' "$BUILD/logs/fuzz-$t.log" | head -20
    rm -f "$bin"
    return 1
  fi
}

# run_parallel FUNCTION ITEM...: at most $JOBS at once; fails if any failed.
run_parallel() {
  local fn="$1" status=0 item; shift
  for item in "$@"; do
    while (( $(jobs -rp | wc -l) >= JOBS )); do wait -n || status=1; done
    "$fn" "$item" &
  done
  while (( $(jobs -rp | wc -l) > 0 )); do wait -n || status=1; done
  wait || status=1
  return $status
}

build_start=$(date +%s)
# Modules by level: each level needs only the ones before it.
run_parallel build_module PeekCrypto PeekCalendar \
  && run_parallel build_module PeekCore PeekWebSocket PeekMail PeekTLS \
  && run_parallel build_module PeekHTTP \
  && run_parallel build_target "${TARGETS[@]}"
build_status=$?
echo "fuzz build: $(( $(date +%s) - build_start )) s (${#TARGETS[@]} targets, $BUILD)"
if [[ $build_status -ne 0 ]]; then
  echo "0 passed, ${#TARGETS[@]} failed"
  exit 1
fi
[[ $BUILD_ONLY -eq 1 ]] && exit 0

PASSED=0
FAILED=0
SUMMARY=()
for t in "${TARGETS[@]}"; do
  scratch="$(mktemp -d /tmp/peek-fuzz-$t.XXXXXX)"
  mkdir -p "$scratch/corpus" "$scratch/artifacts"
  seeds=0
  if [[ -d "Fuzz/corpus/$t" ]]; then
    cp -R "Fuzz/corpus/$t/." "$scratch/corpus/"
    seeds=$(find "$scratch/corpus" -type f | wc -l)
  fi
  log="$BUILD/logs/run-$t.log"
  # Leak checking is off: the Swift runtime's metadata caches are
  # allocated once and never freed, which LeakSanitizer reports at exit.
  TIMEFORMAT='%U %S'
  # The fuzzer runs in a subshell that waits for it, so that `time` counts
  # its CPU; the subshell leaves the fuzzer's pid for the CPU watcher.
  { time ( nice -n "$NICE" "$BUILD/bin/fuzz-$t" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
      -detect_leaks=0 -print_final_stats=1 -artifact_prefix="$scratch/artifacts/" \
      $EXTRA_FLAGS "$scratch/corpus" >"$log" 2>&1 &
      echo $! >"$scratch/pid"; wait $! ) ; } 2>"$scratch/cpu" &
  runner=$!
  if [[ -n "$CPU_BUDGET" ]]; then
    # utime + stime (fields 14 and 15 of /proc/PID/stat, in clock ticks).
    # libFuzzer treats SIGUSR1 as "stop gracefully": final stats, status 0.
    ticks=$(getconf CLK_TCK)
    while kill -0 "$runner" 2>/dev/null; do
      sleep 5
      pid=$(cat "$scratch/pid" 2>/dev/null) || continue
      used=$(awk -v t="$ticks" '{ sub(/^.*\) /, ""); print int(($12 + $13) / t) }' "/proc/$pid/stat" 2>/dev/null) || continue
      if [[ -n "$used" && "$used" -ge "$CPU_BUDGET" ]]; then kill -USR1 "$pid" 2>/dev/null; break; fi
    done
  fi
  wait "$runner"
  status=$?
  read -r user sys <"$scratch/cpu"
  cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.1f", u + s }')
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
  corpus=$(find "$scratch/corpus" -type f | wc -l)
  line="$t: ${execs:-?} runs, ${rate:-?} exec/s, corpus $seeds -> $corpus, cpu ${cpu} s, peak rss ${rss:-?} MB"
  artifact="$(find "$scratch/artifacts" -type f | head -1)"
  if [[ $status -eq 0 && -z "$artifact" ]]; then
    PASSED=$((PASSED + 1))
    echo "$line: ok"
    if [[ $UPDATE_CORPUS -eq 1 ]]; then
      mkdir -p "Fuzz/corpus/$t"
      "$BUILD/bin/fuzz-$t" -merge=1 -detect_leaks=0 "Fuzz/corpus/$t" "$scratch/corpus" >>"$log" 2>&1
      echo "  corpus merged: Fuzz/corpus/$t has $(find "Fuzz/corpus/$t" -type f | wc -l) inputs"
    fi
  else
    FAILED=$((FAILED + 1))
    kept="$BUILD/findings/$t"
    mkdir -p "$kept"
    [[ -n "$artifact" ]] && cp "$artifact" "$kept/" && artifact="$kept/$(basename "$artifact")"
    # The first line that says what happened: a Swift trap, a sanitizer report, a libFuzzer verdict.
    why="$(grep -m1 -E 'Fatal error|fuzz property violated|ERROR: (AddressSanitizer|libFuzzer)|==ERROR|SUMMARY:|deadly signal' "$log")"
    echo "$line: FAILED (status $status)"
    echo "  reproducer: ${artifact:-none}"
    echo "  why: ${why:-see $log}"
    echo "  log: $log"
    echo "  rerun: $BUILD/bin/fuzz-$t ${artifact:-}"
    SUMMARY+=("$t: ${why:-status $status} (${artifact:-no reproducer})")
  fi
  rm -rf "$scratch"
done

for s in "${SUMMARY[@]}"; do echo "failed target $s"; done
echo "$PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]

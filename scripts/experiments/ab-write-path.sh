#!/usr/bin/env bash
# ab-write-path.sh SCENARIO ROUNDS OUTDIR - alternating before/after runs of
# peekd's write path in one binary, built with cork-write-path.patch applied
# (PEEK_WRITE_MODE=writev is the shipped path, PEEK_WRITE_MODE=cork the
# experiment). Per run: a fresh peekd and data directory, seeded, one wsload
# run of DURATION s (default 8), and `perf stat` of the server's syscalls and
# CPU over 4 s mid-run. Prints one line per run; raw files go to OUTDIR.
#
#   git apply scripts/experiments/cork-write-path.patch
#   swift build -c release --scratch-path .build-release --product peekd
#   swift build -c release --scratch-path .build-release --product peek-bench
#   setsid -w scripts/experiments/ab-write-path.sh fan1k 7 /tmp/ab
#
# Run under setsid: the script raises its own session's autogroup priority
# (the kernel here has sched_autogroup on, so `nice` alone, as bench.sh's
# NICE does, only ranks processes within one session).
# SCENARIO: fan1k fan1k-w1 fan10k fan1000x5 idle15k. MODES: default "writev cork".
set -u
cd "$(dirname "$0")/../.."
echo -10 >/proc/self/autogroup 2>/dev/null
sc=$1 rounds=$2 out=$3
PEEKD=${PEEKD_BIN:-.build-release/release/peekd} BENCH=${PEEK_BENCH_BIN:-.build-release/release/peek-bench}
WSLOAD=${WSLOAD_BIN:-/tmp/wsload} D=${DURATION:-8}
SECRET=bench-secret-bench-secret-bench-secret SERVICE=bench-service-token
mkdir -p "$out"
run1() { # mode prefix
    local mode=$1 base=$2 port n=1 args spid data pp
    port=$((22000 + RANDOM % 20000))
    while ss -Htan "( sport = :$port )" | grep -q .; do port=$((port + 1)); done
    data=$(mktemp -d /tmp/peek-ab-data.XXXXXX)
    PEEK_WRITE_MODE=$mode "$PEEKD" --port $port --data "$data" --jwt-secret $SECRET --service-token $SERVICE \
        --frames-per-second 100000 --max-tenant-connections 19900 >"$base.server.log" 2>&1 &
    spid=$!
    for _ in $(seq 1 200); do grep -q "peekd ready" "$base.server.log" 2>/dev/null && break; sleep 0.05; done
    case $sc in
    fan1k) args="--scenario fanout -c 1000 -t 1 -p 1 -d $D" ;;
    fan1k-w1) args="--scenario fanout -c 1000 -t 1 -p 1 --window 1 -d $D" ;;
    fan10k) args="--scenario fanout -c 10000 -t 1 -p 1 -d $D" ;;
    fan1000x5) args="--scenario fanout -c 5000 -t 1000 -p 50 -d $D"; n=1000 ;;
    idle15k) args="--scenario idle -c 15000 -t 1000 -d $D"; n=1000 ;;
    *) echo "unknown scenario $sc"; kill $spid; return ;;
    esac
    timeout 120 "$BENCH" --scenario seed -q --tenant bench --techs 100 -t $n --service-token $SERVICE \
        --seed-out "$base.tickets" "ws://127.0.0.1:$port/v1/ws" >/dev/null
    (sleep $((D / 2 + 1)); timeout 10 perf stat -x, -e raw_syscalls:sys_enter,syscalls:sys_enter_writev,syscalls:sys_enter_sendto,task-clock \
        -p $spid -- sleep 4 2>"$base.perf") &
    pp=$!
    timeout 300 "$WSLOAD" $args --tenant bench --techs 100 --secret $SECRET --ticket-file "$base.tickets" \
        --server-pid $spid "ws://127.0.0.1:$port/v1/ws" >"$base.txt" 2>"$base.progress"
    wait $pp
    kill $spid; wait $spid 2>/dev/null; rm -rf "$data"
    grep -E '^RESULT ' "$base.txt" | tail -1 | sed 's/^RESULT //' | jq -r --arg m "$mode" \
        --arg sys "$(awk -F, '/raw_syscalls/{print $1}' "$base.perf")" \
        --arg send "$(awk -F, '/sys_enter_(writev|sendto)/{s+=$1} END{print s}' "$base.perf")" \
        --arg cpu "$(awk -F, '/task-clock/{print $1}' "$base.perf")" \
        '"\($m) deliveries/s=\(.deliveries_per_s) p99_us=\(.lat_p99_us) gaps=\(.gaps) dups=\(.dups) server_cpu=\(.server_cpu_pct)% | 4 s: syscalls=\($sys) writev+sendto=\($send) task_ms=\($cpu)"'
}
for r in $(seq 1 "$rounds"); do
    for m in ${MODES:-writev cork}; do run1 "$m" "$out/$sc.$m.$r"; done
done

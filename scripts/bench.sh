#!/usr/bin/env bash
# bench.sh - measure peekd (and, side by side, the peer servers) with the
# independent generator wsload and the project's own peek-bench.
#
# usage: scripts/bench.sh [SCENARIO...]          (default: the standard matrix below)
#
# Every measurement gets a fresh server process on a fresh port with a fresh
# --data directory (RSS baselines are clean, TIME_WAIT of the last run does
# not matter), is seeded through the back-end API (peek-bench seed), and is
# preceded by a wait until the machine is quiet. Servers take turns within
# each repeat, so background noise hits them alike.
#
# Scenarios (generator in brackets):
#   idle10k idle15k        hold N signed-in, subscribed connections; server RSS per connection [wsload]
#   idle15k-tls            the same over wss:// (peekd only) [peek-bench]
#   fan1k fan1k-w1 fan10k  1 ticket x 1,000 / 10,000 viewers, 16 notes in flight / one at a time [wsload]
#   fan1000x5              1,000 tickets x 5 viewers, 50 publishers [wsload]
#   connect connect-tls    handshakes per second, plain [wsload] and TLS (peekd only) [peek-bench]
#   ack ack-half           durable acknowledged notes/s; ack latency at half of ACK_RATE [peek-bench]
#   ack-overload           OVERLOAD_RATE offered open-loop (about twice what is sustainable):
#                          what is acknowledged, what is refused, and the server's memory [peek-bench]
#   pb-fan1k pb-fan1000x5  fan-out measured by peek-bench (cross-check of the generator)
#   agents                 mutual-TLS agents streaming chat and telemetry (peekd only) [peek-bench]
#
# Environment:
#   SERVERS      servers to measure (default: "peekd peer-hb"; peer-hb is skipped if not built)
#   REPEAT       runs per scenario and server (default 3); the table shows medians
#   DURATION     measured seconds per run (default 20; connect: 10)
#   OUT          result directory (default /tmp/peek-bench-results/<time>)
#   BUILD        1 (default) builds peekd and peek-bench in release into .build-release; 0 reuses
#   PEEKD_BIN, PEEK_BENCH_BIN, WSLOAD_BIN, PEER_HB_BIN   override the binaries
#   PEEKD_ARGS   extra peekd flags (default: --frames-per-second 100000 --max-tenant-connections 19900,
#                see BENCHMARKS.md: every generated connection signs in to one tenant)
#   ACK_RATE     total notes/s the ack-half scenario offers (default 10000)
#   OVERLOAD_RATE  total notes/s the ack-overload scenario offers (default 100000)
#   QUIET_PCT    wait (at most QUIET_WAIT s, default 300) until other processes use less than this % of a core (default 20)
#   PORT_BASE    first port (default 21000); every run takes new ones
#   DATA_ROOT    where peekd's per-run data directories go (default /tmp; /dev/shm takes fsync out)
#   NICE         if set (e.g. -10), servers and generators run under `nice -n $NICE`, so that
#                background load on a shared machine disturbs the measurement less (recorded)
#
# Only loopback is targeted; every tool call is bounded by `timeout`; servers
# are stopped by the PID this script started.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SHARED=${SHARED:-$ROOT/../shared}
SERVERS=${SERVERS:-"peekd peer-hb"}
REPEAT=${REPEAT:-3}
DURATION=${DURATION:-20}
OUT=${OUT:-/tmp/peek-bench-results/$(date -u +%Y%m%dT%H%M%SZ)}
BUILD=${BUILD:-1}
QUIET_PCT=${QUIET_PCT:-20}
QUIET_WAIT=${QUIET_WAIT:-300}
ACK_RATE=${ACK_RATE:-10000}
OVERLOAD_RATE=${OVERLOAD_RATE:-100000}
PORT=${PORT_BASE:-21000}
PEEKD_BIN=${PEEKD_BIN:-$ROOT/.build-release/release/peekd}
PEEK_BENCH_BIN=${PEEK_BENCH_BIN:-$ROOT/.build-release/release/peek-bench}
WSLOAD_BIN=${WSLOAD_BIN:-/tmp/wsload}
PEER_HB_BIN=${PEER_HB_BIN:-/tmp/peer-hb/release/PeerHB}
PEEKD_ARGS=${PEEKD_ARGS:---frames-per-second 100000 --max-tenant-connections 19900}
SCENARIOS=${*:-"idle10k idle15k idle15k-tls fan1k fan1k-w1 fan10k fan1000x5 connect connect-tls ack ack-half ack-overload"}
NICE=${NICE:-}
nicecmd=()
[ -n "$NICE" ] && nicecmd=(nice -n "$NICE")
SECRET=bench-secret-bench-secret-bench-secret  # peekd wants 32 bytes or more
SERVICE=bench-service-token
mkdir -p "$OUT"

if [ "$BUILD" = 1 ]; then
    echo "building peekd and peek-bench (release, .build-release)..."
    swift build -c release --scratch-path .build-release --product peekd >"$OUT/build.log" 2>&1 &&
        swift build -c release --scratch-path .build-release --product peek-bench >>"$OUT/build.log" 2>&1 ||
        { tail -30 "$OUT/build.log"; exit 1; }
fi
if [ ! -x "$WSLOAD_BIN" ]; then
    cc -O2 -o "$WSLOAD_BIN" "$SHARED/tools/wsload/wsload.c" -lssl -lcrypto -lm || exit 1
fi
for b in "$PEEKD_BIN" "$PEEK_BENCH_BIN"; do [ -x "$b" ] || { echo "missing $b (BUILD=1 builds it)"; exit 1; }; done
if [[ " $SERVERS " == *" peer-hb "* ]] && [ ! -x "$PEER_HB_BIN" ]; then
    echo "peer-hb not built ($PEER_HB_BIN): measuring peekd only."
    echo "  build it with: swift build -c release --package-path $SHARED/tools/peer-hb --scratch-path /tmp/peer-hb"
    SERVERS=${SERVERS//peer-hb/}
fi

busy_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9; exit}' /proc/stat; }
LOAD_SEEN=0
wait_quiet() { # until everything else on the machine uses less than QUIET_PCT of a core
    local waited=0 a b
    while :; do
        a=$(busy_ticks); sleep 2; b=$(busy_ticks)
        LOAD_SEEN=$(((b - a) * 100 / (2 * $(getconf CLK_TCK))))
        if [ "$LOAD_SEEN" -lt "$QUIET_PCT" ] || [ "$waited" -ge "$QUIET_WAIT" ]; then
            echo "  background load before run: ${LOAD_SEEN}% of a core (waited ${waited}s)"
            return
        fi
        waited=$((waited + 2))
    done
}

spid= DATA=
start_server() { # server tls? agent?
    local server=$1 want_tls=$2 log=$3
    PORT=$((PORT + 3))
    # Other programs on a shared machine listen too: skip ports in use.
    while ss -Htan "( sport = :$PORT or sport = :$((PORT + 1)) or sport = :$((PORT + 2)) )" | grep -q .; do PORT=$((PORT + 3)); done
    case $server in
    peekd)
        DATA=$(mktemp -d "${DATA_ROOT:-/tmp}/peek-bench-data.XXXXXX")
        local extra=()
        [ "$want_tls" = 1 ] && extra+=(--tls-port $((PORT + 1)) --agent-port $((PORT + 2)))
        # shellcheck disable=SC2086
        "${nicecmd[@]}" "$PEEKD_BIN" --port "$PORT" --data "$DATA" --jwt-secret "$SECRET" --service-token "$SERVICE" "${extra[@]}" $PEEKD_ARGS >"$log" 2>&1 &
        spid=$!
        for _ in $(seq 1 200); do
            grep -q "peekd ready" "$log" 2>/dev/null && return 0
            kill -0 "$spid" 2>/dev/null || break
            sleep 0.05
        done
        ;;
    peer-hb)
        "${nicecmd[@]}" "$PEER_HB_BIN" --port "$PORT" --secret "$SECRET" >"$log" 2>&1 &
        spid=$!
        for _ in $(seq 1 200); do
            ss -Hltn "sport = :$PORT" | grep -q LISTEN && { sleep 0.3; return 0; }
            kill -0 "$spid" 2>/dev/null || break
            sleep 0.05
        done
        ;;
    esac
    echo "  $server did not start (see $log)"
    return 1
}
stop_server() {
    [ -n "$spid" ] || return 0
    kill "$spid" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$spid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$spid" 2>/dev/null
    wait "$spid" 2>/dev/null
    spid=
    [ -n "$DATA" ] && rm -rf "$DATA"
    DATA=
}
trap stop_server EXIT

# seed SERVER TICKETS FILE: tenant "bench", tech-1..tech-100, tickets; ids to FILE
seed() {
    local server=$1 n=$2 file=$3
    if [ "$server" = peekd ]; then
        timeout 120 "$PEEK_BENCH_BIN" --scenario seed -q --tenant bench --techs 100 -t "$n" --service-token "$SERVICE" \
            --seed-out "$file" "ws://127.0.0.1:$PORT/v1/ws" >/dev/null || return 1
    else
        seq 1001 $((1000 + n)) | sed 's/^/T-/' >"$file"   # peer-hb has no persistence: any id is a ticket
    fi
}

W="--tenant bench --techs 100 --secret $SECRET"
run_one() { # scenario server run
    local sc=$1 server=$2 run=$3 tls=0 tool=wsload args= n=1 url
    case $sc in
    idle10k) args="--scenario idle -c 10000 -t 1000 -d $DURATION"; n=1000 ;;
    idle15k) args="--scenario idle -c 15000 -t 1000 -d $DURATION"; n=1000 ;;
    idle15k-tls) tool=peek-bench tls=1; args="--scenario idle -c 15000 -t 1000 -d $DURATION"; n=1000 ;;
    fan1k) args="--scenario fanout -c 1000 -t 1 -p 1 -d $DURATION" ;;
    fan1k-w1) args="--scenario fanout -c 1000 -t 1 -p 1 --window 1 -d $DURATION" ;;
    fan10k) args="--scenario fanout -c 10000 -t 1 -p 1 -d $DURATION" ;;
    fan10k-w1) args="--scenario fanout -c 10000 -t 1 -p 1 --window 1 -d $DURATION" ;;
    fan1000x5) args="--scenario fanout -c 5000 -t 1000 -p 50 -d $DURATION"; n=1000 ;;
    connect) args="--scenario connect --concurrency 64 -d 10" ;;
    connect-tls) tool=peek-bench tls=1; args="--scenario connect --concurrency 64 -d 10" ;;
    ack) tool=peek-bench; args="--scenario ack -c 0 -t 1000 -p 100 --window 32 -d $DURATION"; n=1000 ;;
    ack-half) tool=peek-bench; args="--scenario ack -c 0 -t 1000 -p 100 --window 32 --rate $((ACK_RATE / 100)) -d $DURATION"; n=1000 ;;
    ack-overload) tool=peek-bench; args="--scenario ack -c 0 -t 1000 -p 100 --window 4096 --rate $((OVERLOAD_RATE / 100)) -d $DURATION"; n=1000 ;;
    pb-fan1k) tool=peek-bench; args="--scenario fanout -c 1000 -t 1 -p 1 -d $DURATION" ;;
    pb-fan1000x5) tool=peek-bench; args="--scenario tickets -c 5000 -t 1000 -p 50 -d $DURATION"; n=1000 ;;
    agents) tool=peek-bench tls=1; args="--scenario agents -c 1000 --agents 100 --chat-rate 5 --telemetry-rate 1 -d $DURATION"; n=100 ;;
    *) echo "unknown scenario $sc" >&2; return ;;
    esac
    if [ "$server" != peekd ] && { [ "$tls" = 1 ] || [[ $sc == ack* ]] || [ "$sc" = agents ]; }; then
        return # TLS, durability and agents exist only in peekd
    fi
    local base="$OUT/$sc.$server.$run"
    echo "== $sc  $server  run $run"
    wait_quiet
    local load=$LOAD_SEEN
    start_server "$server" "$tls" "$base.server.log" || { stop_server; return; }
    local tickets="$base.tickets"
    if [ "$sc" = agents ]; then
        seed "$server" 1 "$tickets" || { echo "  seeding failed"; stop_server; return; }   # tenant + technicians; agents add assets and tickets
    else
        seed "$server" "$n" "$tickets" || { echo "  seeding failed"; stop_server; return; }
    fi
    url="ws://127.0.0.1:$PORT/v1/ws"
    local extra=()
    if [ "$tls" = 1 ]; then
        url="wss://127.0.0.1:$((PORT + 1))/v1/ws"
        extra+=(--cafile "$DATA/certs/dev-ca.pem")
        [ "$sc" = agents ] && extra+=(--agent-port $((PORT + 2)) --agent-ca "$DATA/certs/agent-ca.pem" --agent-ca-key "$DATA/certs/agent-ca-key.pem" --seed --api-port "$PORT" --service-token "$SERVICE")
    fi
    local bin=$WSLOAD_BIN
    [ "$tool" = peek-bench ] && bin=$PEEK_BENCH_BIN
    [[ $sc == connect* ]] || [ "$sc" = agents ] || extra+=(--ticket-file "$tickets")
    # shellcheck disable=SC2086
    echo "\$ ${nicecmd[*]} $bin $args $W ${extra[*]} --server-pid $spid $url" >"$base.txt"
    # shellcheck disable=SC2086
    timeout 900 "${nicecmd[@]}" "$bin" $args $W "${extra[@]}" --server-pid "$spid" "$url" >>"$base.txt" 2>"$base.progress"
    echo "# exit $?" >>"$base.txt"
    stop_server
    local json
    json=$(grep -E '^(RESULT )?\{"tool"' "$base.txt" | tail -1 | sed 's/^RESULT //')
    if [ -z "$json" ]; then echo "  no result (see $base.txt, $base.progress)"; return; fi
    echo "$json" | jq -c --arg sc "$sc" --arg server "$server" --argjson run "$run" --argjson load "$load" \
        '. + {tool_scenario: .scenario} + {scenario:$sc, server:$server, run:$run, load_before_pct:$load}' >>"$OUT/results.jsonl"
    echo "$json" | jq -r '"  deliveries/s=\(.deliveries_per_s // "-") p50=\(.lat_p50_us // "-")us p99=\(.lat_p99_us // "-")us gaps=\(.gaps // "-") dups=\(.dups // "-") rss/conn=\(.rss_per_conn_bytes // "-")B connects/s=\(.connects_per_s // "-") acks/s=\(.acks_per_s // "-") ack_p99=\(.ack_p99_us // "-")us server_cpu=\(.server_cpu_pct)% gen_cpu=\(.wsload_cpu_pct // .bench_cpu_pct)%"'
}

echo "results in $OUT"
{
    echo "date: $(date -u +%FT%TZ)"
    echo "host: $(uname -srm), $(nproc) cores, $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo) @ $(awk -F': ' '/cpu MHz/{print $2; exit}' /proc/cpuinfo) MHz"
    echo "memory: $(awk '/MemTotal/{print $2" kB"}' /proc/meminfo); open files: $(ulimit -n)"
    echo "swift: $(swift --version 2>/dev/null | head -1)"
    echo "scenarios: $SCENARIOS; servers: $SERVERS; repeat: $REPEAT; duration: $DURATION s; peekd args: $PEEKD_ARGS; nice: ${NICE:-none}"
} | tee "$OUT/machine.txt"
for sc in $SCENARIOS; do
    for run in $(seq 1 "$REPEAT"); do
        for server in $SERVERS; do run_one "$sc" "$server" "$run"; done
    done
done

[ -s "$OUT/results.jsonl" ] || exit 0
python3 - "$OUT/results.jsonl" <<'EOF' | tee "$OUT/table.txt"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(xs):
    xs = [x for x in xs if isinstance(x, (int, float)) and x >= 0]
    return statistics.median(xs) if xs else None
metric = {  # scenario prefix -> (label, key, higher is better)
    "idle": ("RSS/conn B", "rss_per_conn_bytes", False),
    "fan": ("deliveries/s", "deliveries_per_s", True),
    "pb-fan": ("deliveries/s", "deliveries_per_s", True),
    "connect": ("handshakes/s", "connects_per_s", True),
    "ack": ("acked notes/s", "acks_per_s", True),
    "agents": ("deliveries/s", "deliveries_per_s", True),
}
def pick(sc):
    for k in sorted(metric, key=len, reverse=True):
        if sc.startswith(k): return metric[k]
scen = []
for r in rows:
    if r["scenario"] not in scen: scen.append(r["scenario"])
print(f"{'scenario':<14}{'server':<9}{'n':>3} {'metric':<14}{'median':>12} {'p50 ms':>8} {'p99 ms':>8} {'p99.9 ms':>9} {'gaps':>5} {'dups':>5} {'gen cpu%':>8} {'load%':>6}  ratio")
for sc in scen:
    label, key, higher = pick(sc)
    meds = {}
    for server in ["peekd", "peer-hb", "peer-py"]:
        rs = [r for r in rows if r["scenario"] == sc and r["server"] == server]
        if not rs: continue
        m = med([r.get(key) for r in rs]); meds[server] = m
        lat = lambda k: med([r.get(k) for r in rs])
        p50, p99, p999 = (lat("ack_p50_us"), lat("ack_p99_us"), lat("ack_p999_us")) if sc.startswith("ack") else (lat("lat_p50_us"), lat("lat_p99_us"), lat("lat_p999_us"))
        fmt = lambda v: "-" if v is None or v == 0 else f"{v/1000:.1f}"
        gaps = sum((r.get("gaps") or 0) + (r.get("seq_gaps") or 0) for r in rs)
        dups = sum((r.get("dups") or 0) + (r.get("seq_dups") or 0) for r in rs)
        gen = med([r.get("wsload_cpu_pct", r.get("bench_cpu_pct")) for r in rs])
        load = med([r.get("load_before_pct") for r in rs])
        ratio = ""
        if server != "peekd" and meds.get("peekd") and m:
            ratio = f"peekd/{server} = {(meds['peekd']/m if higher else m/meds['peekd']):.2f}x"
        print(f"{sc:<14}{server:<9}{len(rs):>3} {label:<14}{(m if m is not None else float('nan')):>12.0f} {fmt(p50):>8} {fmt(p99):>8} {fmt(p999):>9} {gaps:>5} {dups:>5} {(gen or 0):>8.0f} {(load or 0):>6.0f}  {ratio}")
EOF

#!/usr/bin/env bash
# scripts/cluster.sh [N]: a PostgreSQL and N peekd nodes (default 3) on this
# machine, sharing one database, for trying several nodes by hand. Prints
# each node's URL and how to get a token, then waits; Ctrl-C (or SIGTERM)
# stops the nodes and PostgreSQL and removes everything it made.
#
# PostgreSQL 15 from Debian (installed when missing, like scripts/test.sh):
# a fresh cluster (initdb) in a temporary directory, run as the `postgres`
# user when this script runs as root (the server refuses root), on a free
# loopback port, trust authentication. The nodes run with --demo and the
# same secrets: node 1 seeds the demo tenant first, the others start once it
# is ready. PEEKD=path picks the binary (default .build/debug/peekd, built
# when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-3}"
[[ "$N" =~ ^[1-9][0-9]*$ ]] || { echo "usage: scripts/cluster.sh [N]   (N nodes, default 3)" >&2; exit 2; }
PEEKD="${PEEKD:-.build/debug/peekd}"
PGBIN=/usr/lib/postgresql/15/bin

if [[ ! -x "$PGBIN/initdb" ]] || ! pkg-config --exists libpq; then
  echo "installing postgresql and libpq-dev (Debian)"
  { apt-get update -qq && apt-get install -y -qq postgresql libpq-dev; } >/tmp/peekd-apt-postgres.log 2>&1 \
    || { tail -20 /tmp/peekd-apt-postgres.log; exit 2; }
fi
if [[ ! -x "$PEEKD" ]]; then
  echo "building peekd"
  swift build --product peekd >/dev/null
fi
PEEKD="$(cd "$(dirname "$PEEKD")" && pwd)/$(basename "$PEEKD")"

DIR="$(mktemp -d /tmp/peek-cluster.XXXXXX)"
PIDS=()
as_pg() {
  if [[ "$(id -u)" -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}
cleanup() {
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  as_pg "$PGBIN/pg_ctl" -D "$DIR/pg" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 0' INT TERM
[[ "$(id -u)" -eq 0 ]] && chown postgres:postgres "$DIR"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PGPORT="$(free_port)"
as_pg "$PGBIN/initdb" -D "$DIR/pg" -A trust -U postgres -E UTF8 --locale=C --no-instructions >"$DIR/initdb.log" 2>&1 \
  || { cat "$DIR/initdb.log"; exit 1; }
as_pg "$PGBIN/pg_ctl" -D "$DIR/pg" -l "$DIR/pg/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -k $DIR -p $PGPORT -c max_connections=200" start >/dev/null
"$PGBIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U postgres peek
URL="postgres://postgres@127.0.0.1:$PGPORT/peek"

SECRET="$(head -c 32 /dev/urandom | base64 | tr -d '\n')"
SERVICE="$(head -c 24 /dev/urandom | base64 | tr -d '\n')"
start_node() {
  local i="$1"
  mkdir -p "$DIR/node$i"
  "$PEEKD" --port 0 --threads 1 --data "$DIR/node$i" --database "$URL" --demo \
    --tls-port 0 --agent-port 0 --jwt-secret "$SECRET" --service-token "$SERVICE" >"$DIR/node$i.out" 2>"$DIR/node$i.err" &
  PIDS+=("$!")
}
wait_ready() {
  local i="$1" line=""
  for _ in $(seq 1 300); do
    line="$(grep -m1 '^peekd ready' "$DIR/node$i.out" 2>/dev/null || true)"
    [[ -n "$line" ]] && break
    kill -0 "${PIDS[$((i - 1))]}" 2>/dev/null || { echo "node $i stopped:"; cat "$DIR/node$i.err"; exit 1; }
    sleep 0.1
  done
  [[ -n "$line" ]] || { echo "node $i did not get ready:"; cat "$DIR/node$i.err"; exit 1; }
  sed -n 's/.*plain=\([^ ]*\).*/\1/p' <<<"$line"
}

start_node 1
ADDRESSES=("$(wait_ready 1)")
for i in $(seq 2 "$N"); do start_node "$i"; done
for i in $(seq 2 "$N"); do ADDRESSES+=("$(wait_ready "$i")"); done

echo "PostgreSQL: $URL"
for i in $(seq 1 "$N"); do
  echo "node $i: http://${ADDRESSES[$((i - 1))]}/   (pid ${PIDS[$((i - 1))]}, log $DIR/node$i.err)"
done
echo "service token: $SERVICE"
echo "a technician token: $PEEKD token --jwt-secret '$SECRET' --tenant demo --user <technician>"
echo "cluster ready: $N nodes; Ctrl-C stops them"
wait

#!/usr/bin/env bash
# make bench, third part: POST /v1/capabilities/discover over HTTP on
# loopback with 10,000 and then 100,000 registered agents (SQLite), and
# what the index costs: start-up time and memory per agent.
#
# The agents are written straight into the database by discover_load
# (bench/discover_load.c) while the server is stopped, all in the org the
# queries come from (the worst case: no org pre-filter helps), then the
# server is started and rebuilds its index from the store, as after any
# restart. Queries rotate through the evaluation set's (tests/data/
# discovery_queries.tsv) with the default limit of 5; wrk runs 1 thread and
# BENCH_DISCOVER_CONNS (default 2, the server's thread count here) connections.
#
# Memory per agent: the server's resident size with N agents, minus its
# size with none, over N (so it counts the index, the lexicon is in both).
#
# Usage: bash bench/discover.sh /abs/path/nexra /abs/path/discover_load
# Exit status: 0 whatever the goals' outcome; 1 when the run is broken.
set -euo pipefail

NEXRA=${1:?usage: bench/discover.sh NEXRA DISCOVER_LOAD}
LOAD=${2:?usage: bench/discover.sh NEXRA DISCOVER_LOAD}
NGINX=${NGINX:-/usr/sbin/nginx}
CONNS=${BENCH_DISCOVER_CONNS:-2}
SIZES=${BENCH_DISCOVER_SIZES:-"10000 100000"}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export NEXRA_START_TRIES=1200 # the index of 100,000 agents is built before listening
DATA=$HERE/../tests/data

# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
bench_require "$NEXRA" "$NGINX"
[ -x "$LOAD" ] || die "$LOAD is not an executable"

DIR=$(mktemp -d -t nexra-bench-discover.XXXXXX)
NEXRA_PID=""
cleanup() {
  stop_pid "$NEXRA_PID"
  rm -rf "$DIR"
}
trap cleanup EXIT

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# The wrk script: POST each query of the evaluation set in turn.
python3 - "$DATA/discovery_queries.tsv" >"$DIR/discover.lua" <<'PY'
import json, sys
qs = [l.rstrip("\n").split("\t")[2] for l in open(sys.argv[1]) if l[0] != "#" and l.strip()]
print("local bodies = {")
for q in qs:
    print("  %s," % json.dumps(json.dumps({"query": q, "limit": 5})))
print("}")
print("""local i = 0
request = function()
  i = i % #bodies + 1
  return wrk.format("POST", "/v1/capabilities/discover",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY")},
    bodies[i])
end""")
PY

BUSY=$(cpu_busy_pct)
start_nexra "$NEXRA"
register_org bench
api_call 200 GET /v1/orgs/me
ORG=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["data"]["org_id"])' "$DIR/api.json")
BASE_RSS=$(rss_kb "$NEXRA_PID")
stop_pid "$NEXRA_PID"; NEXRA_PID=""
export BENCH_KEY=$KEY

echo
echo "discover over HTTP (SQLite, all agents in the caller's org, wrk -t1 -c$CONNS, ${DURATION}s):"
printf '  %-8s %10s %10s %10s %10s %12s %14s %8s\n' agents "req/s" "p50 ms" "p99 ms" "non-2xx" \
  "start ms" "bytes/agent" "goal"
loaded=0
for n in $SIZES; do
  "$LOAD" "sqlite:$DIR/nexra.db" "$ORG" "$DATA/discovery_agents.tsv" "$loaded" $((n - loaded)) \
    || die "loading $n agents failed"
  loaded=$n
  start_nexra "$NEXRA"
  start_ms=$(grep -o 'discovery index ready in [0-9]* ms' "$DIR/nexra.err" | tail -n1 | grep -o '[0-9]* ms' | cut -d' ' -f1)
  rss=$(rss_kb "$NEXRA_PID")
  # one discover to check the answer before measuring
  api_call 200 POST /v1/capabilities/discover '{"query":"research company background","limit":5}'
  grep -q '"agent_id"' "$DIR/api.json" || die "discover found nothing among $n agents"
  ROUND_TAG=$n wrk_measure "n$n" "$NEXRA_PID" -c"$CONNS" -s "$DIR/discover.lua" "$BASE"
  rss_after=$(rss_kb "$NEXRA_PID")
  goal=2; [ "$n" -ge 100000 ] && goal=10
  p99=${P99[-1]}
  verdict=$(awk -v p="$p99" -v g="$goal" 'BEGIN { print (p <= g) ? "met" : "missed" }')
  printf '  %-8s %10s %10s %10s %10s %12s %14s %8s\n' "$n" "${RPS[-1]}" "${P50[-1]}" "$p99" \
    "${NON2XX[-1]}" "$start_ms" "$(( (rss_after - BASE_RSS) * 1024 / n ))" "p99<=${goal}ms $verdict"
  [ "${NON2XX[-1]}" = 0 ] || die "discover answered non-2xx under load"
  stop_pid "$NEXRA_PID"; NEXRA_PID=""
done
busy_warning "$BUSY"
echo "  (bytes/agent: resident size with the agents minus without, over the count: index, caches and"
echo "   SQLite page cache together; the index's own figure is in the server's start-up log)"
grep -h 'discovery index ready' "$DIR/nexra.err" | tail -n "$(echo "$SIZES" | wc -w)" \
  | sed 's/.*"detail":"/  /; s/"}$//'

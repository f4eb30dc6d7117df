#!/usr/bin/env bash
# make bench, second part: governed delegations per second and the latency
# Nexra adds to a call, next to nginx proxying the same request to the same
# callee, measured in the same run.
#
# A delegation through Nexra is: authenticate, validate the input against
# the callee's schema, decide the policy, hold the budget and record the
# delegation (one group-committed, fsynced transaction), sign a JWT and the
# webhook, POST it to the callee, validate its answer, and settle (a second
# durable transaction: charge, release, audit entry, trust, billing event).
# The callee is a no-op: nginx answering a fixed JSON body on loopback, so
# what is measured is Nexra's own cost. The baseline is nginx as a reverse
# proxy (keep-alive upstream pool) in front of the same callee: the floor
# any proxy must respect, and one that does no governance and no I/O.
#
# Two measurements, rounds interleaved like bench/run.sh:
#  - throughput: wrk 1 thread, 32 connections, POST /v1/delegate vs the
#    same POST through the nginx proxy (2 workers, as Nexra serves on 2
#    threads; and 1 worker);
#  - added latency at a fixed rate (~1,000 req/s; wrk paced by a Lua
#    delay()): p50/p99 of the POST through Nexra, through the proxy and
#    straight to the callee; added = through minus direct, per round.
#
# Usage: bash bench/delegate.sh /absolute/path/to/nexra
# Environment: BENCH_DURATION (s per measured run, default 5), BENCH_ROUNDS
#              (default 3), BENCH_WARMUP (s, default 2), BENCH_CONNECTIONS
#              (32), BENCH_RATE (paced runs, req/s, default 1000).
# Exit status: 0 whatever the goals' outcome (this is a measurement); 1 when
# the run itself is broken (setup failed, more than 1% of the delegations
# were not 2xx, or the settled delegations on disk do not match what wrk
# was answered).
set -euo pipefail

NEXRA=${1:?usage: bench/delegate.sh /absolute/path/to/nexra}
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_CONNECTIONS:-32}
RATE=${BENCH_RATE:-1000}
NGINX=${NGINX:-/usr/sbin/nginx}
GOAL_RPS=5000       # durable delegations/s (absolute: machine-dependent)
GOAL_P99_MS=1.5     # added p99 at ~RATE req/s
GOAL_RATIO=0.3      # delegations/s over nginx proxy req/s (2 workers)

# Paced runs: PACED_CONNS connections share one schedule of RATE sends/s
# (see paced.lua below); the rate holds while fewer than PACED_CONNS
# requests are outstanding at once, i.e. while latency < PACED_CONNS / RATE.
PACED_CONNS=32

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_require "$NEXRA" "$NGINX"
{ [ "$RATE" -ge 1 ] && [ "$RATE" -le 20000 ]; } || die "BENCH_RATE=$RATE: expected 1 to 20000 req/s"

DIR=$(mktemp -d -t nexra-bench-delegate.XXXXXX)
NEXRA_PID="" CALLEE_PID="" PROXY1_PID="" PROXY2_PID=""

cleanup() {
  stop_pid "$PROXY1_PID"
  stop_pid "$PROXY2_PID"
  stop_pid "$NEXRA_PID"
  stop_pid "$CALLEE_PID"
  rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

BUSY_BEFORE=$(cpu_busy_pct)

# The callee's answer and the request body every target gets.
CALLEE_ANSWER='{"result":{"ok":true},"cost_usd":0.000001}'
CALLER=bench-caller
CALLEE=bench-callee
BODY="{\"callee_agent_id\":\"$CALLEE\",\"task\":{\"input\":{\"company_name\":\"Acme\"}},\"budget_cap_usd\":0.01}"

# --------------------------------------------------------------- nginx --
# The no-op callee: 1 worker, a fixed answer. `return` reads and discards
# the request body, so keep-alive connections stay usable.
CALLEE_PORT=$(free_port)
CALLEE_URL="http://127.0.0.1:$CALLEE_PORT/execute"
CHECK_CURL="-d {}" start_nginx_conf callee 1 "$CALLEE_URL" "  server {
    listen 127.0.0.1:$CALLEE_PORT;
    location /execute {
      default_type application/json;
      return 200 '$CALLEE_ANSWER';
    }
  }"
CALLEE_PID=$NGINX_STARTED_PID

# start_proxy NAME WORKERS: nginx proxying /execute to the callee over a
# keep-alive upstream pool. Sets PROXY_URL.
start_proxy() {
  local port
  port=$(free_port)
  PROXY_URL="http://127.0.0.1:$port/execute"
  CHECK_CURL="-d {}" start_nginx_conf "$1" "$2" "$PROXY_URL" "  upstream callee {
    server 127.0.0.1:$CALLEE_PORT;
    keepalive 64;
    keepalive_requests 1000000000;
  }
  server {
    listen 127.0.0.1:$port;
    location /execute {
      proxy_pass http://callee;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
    }
  }"
}
start_proxy proxy1 1; PROXY1_PID=$NGINX_STARTED_PID PROXY1_URL=$PROXY_URL
start_proxy proxy2 2; PROXY2_PID=$NGINX_STARTED_PID PROXY2_URL=$PROXY_URL

# --------------------------------------------------------------- nexra --
start_nexra "$NEXRA"
register_org bench-delegate

# agent_body ID CAPABILITY: an agent whose webhook is the callee.
agent_body() {
  printf '{"agent_id":"%s","name":"Bench %s","description":"No-op %s agent for the delegation bench","capability_type":"%s","input_schema":{"type":"object"},"output_schema":{"type":"object"},"pricing":{"per_call_usd":0.000001},"sla":{"p99_latency_ms":3000,"availability":0.99},"webhook_url":"%s","webhook_secret":"bench-secret-0123456789abcdef0123456789","is_public":false}' \
    "$1" "$2" "$2" "$2" "$CALLEE_URL"
}
api_call 201 POST /v1/agents/register "$(agent_body "$CALLER" other)"
api_call 201 POST /v1/agents/register "$(agent_body "$CALLEE" research)"

# A rule allowing the capability, and an org budget large enough for the
# whole run, so every delegation takes the budget-hold path.
POLICY_YAML='organization:
  monthly_budget_usd: 1000000
rules:
  - capability: research
    max_budget_usd: 1
'
POLICY_BODY=$(python3 -c 'import json,sys; print(json.dumps({"name":"bench-delegate","yaml":sys.argv[1],"priority":10}))' "$POLICY_YAML")
api_call 201 POST /v1/policies "$POLICY_BODY"

# One delegation by hand: it must complete before anything is measured.
api_call 200 POST /v1/delegate "$BODY" -H "X-Agent-ID: $CALLER"
grep -q '"status": *"completed"' "$DIR/api.json" || die "the first delegation did not complete: $(cat "$DIR/api.json")"
SETUP_DELEGATIONS=1

# ---------------------------------------------------------------- wrk --
# The same request to every target; the nginx targets ignore the headers.
cat >"$DIR/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Agent-ID"] = "$CALLER"
LUA
# Paced: wrk calls delay() before each request of any connection and
# waits that many ms on it. Each call takes the next slot of one schedule,
# 1000/RATE ms apart, read off CLOCK_MONOTONIC (LuaJIT's ffi), so the
# sends keep to RATE/s whatever each request's latency (wrk's plain
# fixed-delay pacing would slow down as latency grows). A slot nobody was
# free to take is skipped, not made up for with a burst. wrk starts its
# latency clock after the wait, so latency is the request's alone.
{ cat "$DIR/post.lua"; cat <<LUA; } >"$DIR/paced.lua"
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } nexra_bench_timespec;
int clock_gettime(int clock, nexra_bench_timespec *ts);
]]
local ts = ffi.new("nexra_bench_timespec")
local period = 1000 / $RATE
local next_at
function delay()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  local now = tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
  if not next_at or next_at < now - period then next_at = now end
  local wait = next_at - now
  next_at = next_at + period
  if wait < 0 then return 0 end
  return math.floor(wait + 0.5)
end
LUA

# measure NAME URL SCRIPT CONNS PIDS... (PIDS: words, or one string of them)
measure() {
  local name=$1 url=$2 script=$3 conns=$4; shift 4
  wrk_measure "$name" "$*" -c"$conns" -H "Authorization: Bearer $KEY" \
    -s "$DIR/$script" "$url"
}

ND="nexra POST /v1/delegate"
NP2="nginx proxy, 2 workers"
NP1="nginx proxy, 1 worker"
LD="callee direct @rate"
LN="nexra POST /v1/delegate @rate"
LP="nginx proxy (2 workers) @rate"

for round in $(seq "$ROUNDS"); do
  ROUND_TAG=$round
  measure "$ND" "$BASE/v1/delegate" post.lua "$CONNS" "$NEXRA_PID"
  measure "$NP2" "$PROXY2_URL" post.lua "$CONNS" "$(nginx_pids "$PROXY2_PID")"
  measure "$LD" "$CALLEE_URL" paced.lua "$PACED_CONNS" "$(nginx_pids "$CALLEE_PID")"
  measure "$LN" "$BASE/v1/delegate" paced.lua "$PACED_CONNS" "$NEXRA_PID"
  measure "$LP" "$PROXY2_URL" paced.lua "$PACED_CONNS" "$(nginx_pids "$PROXY2_PID")"
  measure "$NP1" "$PROXY1_URL" post.lua "$CONNS" "$(nginx_pids "$PROXY1_PID")"
done
TARGETS=("$ND" "$NP2" "$NP1" "$LD" "$LN" "$LP")

# --------------------------------------------------- durable settlement --
# Every 2xx wrk counted is a delegation settled `completed` and committed
# before the answer left. Requests still in flight when a wrk run stopped
# were not counted by wrk but complete all the same: at most CONNS (or
# PACED_CONNS) per run more. Read the server's counters, stop it cleanly,
# then count what is on disk.
nexra_ok=0 nexra_sent=0 nexra_slack=0
for i in "${!NAMES[@]}"; do
  case "${NAMES[$i]}" in
    "$ND") c=$CONNS ;;
    "$LN") c=$PACED_CONNS ;;
    *) continue ;;
  esac
  n=$(( TOTAL[i] + WARM_TOTAL[i] )) bad=$(( NON2XX[i] + WARM_NON2XX[i] ))
  nexra_sent=$(( nexra_sent + n )) nexra_ok=$(( nexra_ok + n - bad ))
  nexra_slack=$(( nexra_slack + 2 * c ))
done
nexra_ok=$(( nexra_ok + SETUP_DELEGATIONS )) nexra_sent=$(( nexra_sent + SETUP_DELEGATIONS ))
sleep 0.5
METRICS=$(curl -fsS "$BASE/metrics" || true)
metric() { printf '%s\n' "$METRICS" | awk -v m="$1" '$1 == m {print $2; f=1} END {if (!f) print "?"}'; }
M_COMPLETED=$(metric 'nexra_delegations_total{status="completed"}')
M_FAILED=$(metric 'nexra_delegations_total{status="failed"}')
M_TIMED_OUT=$(metric 'nexra_delegations_total{status="timed_out"}')
M_BLOCKED=$(metric 'nexra_delegations_total{status="blocked"}')
M_BATCHES=$(metric 'nexra_ledger_batches_total')
M_JOBS=$(metric 'nexra_ledger_jobs_total')
NEXRA_THREADS=$(nexra_threads)
stop_pid "$NEXRA_PID"; NEXRA_PID=""

DISK=$(python3 - "$DIR/nexra.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
q = lambda sql: db.execute(sql).fetchone()[0] or 0
print(q("SELECT count(*) FROM delegations WHERE status = 'completed'"),
      q("SELECT count(*) FROM delegations WHERE status <> 'completed'"),
      q("SELECT count(*) FROM audit_log"),
      q("SELECT count(*) FROM billing_events"),
      q("SELECT sum(spent_micros) FROM budget_periods"),
      q("SELECT sum(held_micros) FROM budget_periods"))
PY
) || die "could not read the delegations back from $DIR/nexra.db"
read -r D_COMPLETED D_OTHER D_AUDIT D_BILLING D_SPENT D_HELD <<<"$DISK"
# Server log lines other than info (warnings, errors), for the report.
LOG_ISSUES=$(grep -c -v '"level":"info"' "$DIR/nexra.err" || true)

# --------------------------------------------------------------- report --
fmt() { awk -v x="$1" 'BEGIN { if (x == "-" || x == "") print "-"; else printf "%.2f", x }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { print (a != "-" && a != "" && a + 0 >= b + 0) ? "PASS" : "FAIL" }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { print (a != "-" && a != "" && a + 0 <= b + 0) ? "PASS" : "FAIL" }'; }

echo
echo "nexra delegation bench: wrk 1 thread, ${WARMUP}s warm-up + ${DURATION}s per target, $ROUNDS rounds,"
echo "loopback, $(nproc) CPUs; nexra on SQLite (WAL, synchronous=FULL), $NEXRA_THREADS threads,"
echo "callee: nginx 1 worker answering $CALLEE_ANSWER"
echo "throughput: $CONNS connections; @rate: $PACED_CONNS connections, sends paced to $RATE/s"
bench_versions
busy_warning "$BUSY_BEFORE"
echo
printf '%-31s %10s %9s %9s %9s %9s %8s\n' target req/s p50_ms p99_ms non-2xx sock_err cpu_us
for t in "${TARGETS[@]}"; do
  printf '%-31s %10s %9s %9s %9s %9s %8s\n' "$t" "$(median_of RPS "$t")" "$(median_of P50 "$t")" \
    "$(median_of P99 "$t")" "$(sum_of NON2XX "$t")" "$(sum_of SOCKERR "$t")" "$(median_of CPU "$t")"
done
echo "(medians over $ROUNDS rounds; non-2xx and socket errors summed; cpu_us: CPU time per request"
echo " of the server in the middle (nexra, or the proxy's nginx processes; the callee itself for"
echo " 'callee direct'), not counting the callee)"

A50=$(paired_diff P50 "$LN" "$LD"); A99=$(paired_diff P99 "$LN" "$LD")
B50=$(paired_diff P50 "$LP" "$LD"); B99=$(paired_diff P99 "$LP" "$LD")
echo
echo "added latency at ~$RATE req/s (through minus direct to the callee, median of per-round differences):"
printf '  %-29s p50 %6s ms   p99 %6s ms   (achieved %s req/s)\n' "nexra POST /v1/delegate" "$A50" "$A99" "$(fmt "$(median_of RPS "$LN")")"
printf '  %-29s p50 %6s ms   p99 %6s ms   (achieved %s req/s)\n' "nginx proxy (2 workers)" "$B50" "$B99" "$(fmt "$(median_of RPS "$LP")")"
printf '  %-29s p50 %6s ms   p99 %6s ms   (achieved %s req/s)\n' "(callee direct, absolute)" "$(median_of P50 "$LD")" "$(median_of P99 "$LD")" "$(fmt "$(median_of RPS "$LD")")"

R2=$(paired_ratio RPS "$ND" "$NP2"); R1=$(paired_ratio RPS "$ND" "$NP1")
C2=$(paired_ratio CPU "$ND" "$NP2")
echo
echo "throughput, nexra delegations/s over nginx proxy req/s (median of per-round ratios):"
printf '  vs nginx proxy, 2 workers: %sx    vs 1 worker: %sx\n' "$R2" "$R1"
printf '  CPU per request, nexra over nginx proxy (2 workers): %sx\n' "$C2"

echo
echo "durable settlement: wrk was answered 2xx $nexra_ok times (of $nexra_sent, warm-ups and 1 setup call included)"
echo "  /metrics: completed $M_COMPLETED, failed $M_FAILED, timed_out $M_TIMED_OUT, blocked $M_BLOCKED;"
echo "            ledger group commits $M_BATCHES for $M_JOBS operations"
echo "  on disk after a clean stop: $D_COMPLETED completed, $D_OTHER in another state, $D_AUDIT audit entries,"
echo "            $D_BILLING billing events, spent $D_SPENT micro-USD, held $D_HELD micro-USD"
echo "  server log: $LOG_ISSUES lines not at info level"
grep -v '"level":"info"' "$DIR/nexra.err" | head -n 3 | cut -c1-200 | sed 's/^/    /' || true

RPS_ND=$(median_of RPS "$ND")
echo
echo "goals (2-core machine):"
printf '  durable delegations/s >= %s:        %8s  %s  (absolute, so machine-dependent)\n' \
  "$GOAL_RPS" "$(fmt "$RPS_ND")" "$(ge "$RPS_ND" "$GOAL_RPS")"
printf '  added p99 <= %s ms at ~%s req/s:  %8s  %s  (achieved %s req/s)\n' "$GOAL_P99_MS" "$RATE" "$A99" \
  "$(le "$A99" "$GOAL_P99_MS")" "$(fmt "$(median_of RPS "$LN")")"
printf '  delegations/s >= %sx nginx proxy:     %7sx  %s  (vs 2 workers)\n' "$GOAL_RATIO" "$R2" "$(ge "$R2" "$GOAL_RATIO")"

# A run where delegations failed, or did not settle durably, measures nothing.
broken=0
for t in "$ND" "$LN" "$NP2" "$NP1" "$LP" "$LD"; do
  too_many_errors "$t" && broken=1
done
if [ "$D_COMPLETED" -lt "$nexra_ok" ] || [ "$D_COMPLETED" -gt $(( nexra_sent + nexra_slack )) ] \
   || [ "$M_COMPLETED" != "$D_COMPLETED" ] || [ "$D_AUDIT" -ne $(( D_COMPLETED + D_OTHER )) ] \
   || [ "$D_BILLING" -ne "$D_COMPLETED" ] || [ "$D_SPENT" -ne "$D_COMPLETED" ] || [ "$D_HELD" -ne 0 ]; then
  echo "bench: the delegations on disk do not match what wrk was answered (see above)" >&2
  broken=1
fi
if [ "$broken" = 1 ]; then
  grep -v '"status":20[01],' "$DIR/nexra.err" | tail -n 5 >&2 || true
fi
exit "$broken"

#!/usr/bin/env bash
# make bench: throughput and latency of Nexra's agent registry next to a
# static file served by nginx, measured in the same run.
#
# Shared machines drift from one day to the next, so absolute numbers from
# different runs cannot be compared; a ratio against a baseline measured
# minutes apart on the same box can. The baseline is the cheapest thing an
# HTTP server can do: nginx sending a small static JSON file (the very bytes
# nexra returns for the agent, so both send the same body). nginx runs once
# with 1 worker and once with 2 (nexra serves on 2 threads); both are shown.
#
# wrk runs with 1 thread and 32 connections: on a 2-core box a second wrk
# thread would take the core the server needs. Each target gets a warm-up
# (discarded) and then a measured run. Server CPU per request is read from
# /proc (utime + stime of the server's processes) around the measured run.
#
# Usage: bash bench/run.sh /absolute/path/to/nexra
# Environment: BENCH_DURATION (s per measured run, default 5), BENCH_ROUNDS
#              (default 3), BENCH_WARMUP (s, default 2), BENCH_CONNECTIONS (32).
# Exit status: 0 whatever the goal's outcome (this is a measurement); 1 when
# the run itself is broken (setup failed, or more than 1% of nexra's
# responses were not 2xx).
set -euo pipefail

NEXRA=${1:?usage: bench/run.sh /absolute/path/to/nexra}
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_CONNECTIONS:-32}
NGINX=${NGINX:-/usr/sbin/nginx}
GOAL=0.5

# die, stop_pid, free_port, cpu_ticks, cpu_busy_pct, start_nexra,
# register_org, start_nginx_conf, wrk_measure, median_of, paired_ratio...
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_require "$NEXRA" "$NGINX"

DIR=$(mktemp -d -t nexra-bench.XXXXXX)
NEXRA_PID=""
NGINX_PID=""

cleanup() {
  stop_pid "$NGINX_PID"
  stop_pid "$NEXRA_PID"
  rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

BUSY_BEFORE=$(cpu_busy_pct)

# ---------------------------------------------------------------- nexra --
start_nexra "$NEXRA"
register_org bench

# One agent body, printf-style with the agent_id as %s: filled once for the
# GET target, and per request by the Lua script for the POST target.
agent_body() {
  printf '{"agent_id":"%s","name":"Research Agent","description":"Researches competitors and market positioning for a company given its name","capability_type":"research","input_schema":{"type":"object","properties":{"company_name":{"type":"string"}},"required":["company_name"]},"output_schema":{"type":"object","properties":{"summary":{"type":"string"}}},"pricing":{"per_call_usd":0.15},"sla":{"p99_latency_ms":3000,"availability":0.99},"webhook_url":"http://127.0.0.1:9/execute","webhook_secret":"bench-secret-0123456789abcdef0123456789","is_public":false}' "$1"
}

AGENT=bench-agent-0
code=$(curl -sS -o "$DIR/reg.json" -w '%{http_code}' -X POST "$BASE/v1/agents/register" \
  -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' -d "$(agent_body $AGENT)")
[ "$code" = 201 ] || die "agent register answered $code: $(cat "$DIR/reg.json")"

GET_URL="$BASE/v1/agents/$AGENT"
mkdir -p "$DIR/www"
code=$(curl -sS -o "$DIR/www/agent.json" -w '%{http_code}' -H "Authorization: Bearer $KEY" "$GET_URL")
[ "$code" = 200 ] || die "GET $GET_URL answered $code: $(cat "$DIR/www/agent.json")"
BODY_BYTES=$(wc -c <"$DIR/www/agent.json")

# POST /v1/agents/register: every request a new agent_id (thread id and a
# counter), so each one is a real insert and none is a 409.
cat >"$DIR/register.lua" <<EOF
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
local template = [==[$(agent_body '%s')]==]
local headers = {
  ["Authorization"] = "Bearer " .. os.getenv("NEXRA_BENCH_KEY"),
  ["Content-Type"] = "application/json",
}
local run = os.getenv("NEXRA_BENCH_RUN")
local counter = 0
function request()
  counter = counter + 1
  local id = string.format("bench-%s-%d-%d", run, tid, counter)
  return wrk.format("POST", "/v1/agents/register", headers,
                    string.format(template, id))
end
EOF

# POST /v1/policies/evaluate: a dry-run decision against a 20-rule stack
# (the matching rule is the last, so the index has to find it), the callee
# read from the registry. Same body every request; nothing is written.
{
  printf 'rules:\n'
  for i in $(seq 19); do printf '  - capability: cap_%02d\n    max_budget_usd: 1\n' "$i"; done
  printf '  - capability: research\n    max_budget_usd: 0.50\n    min_trust_score: 0.1\n'
} >"$DIR/policy.yaml"
POLICY_BODY=$(python3 -c 'import json,sys; print(json.dumps({"name":"bench","yaml":open(sys.argv[1]).read(),"priority":10}))' "$DIR/policy.yaml")
code=$(curl -sS -o "$DIR/pol.json" -w '%{http_code}' -X POST "$BASE/v1/policies" \
  -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' -d "$POLICY_BODY")
[ "$code" = 201 ] || die "policy upload answered $code: $(cat "$DIR/pol.json")"
cat >"$DIR/evaluate.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"caller_agent_id":"sales-agent","callee_agent_id":"$AGENT","budget_cap_usd":0.25}'
wrk.headers["Content-Type"] = "application/json"
LUA

# ---------------------------------------------------------------- nginx --
# start_nginx WORKERS: starts nginx on a free port; sets NGINX_PID, NGINX_URL.
start_nginx() {
  local port
  port=$(free_port)
  NGINX_URL="http://127.0.0.1:$port/agent.json"
  start_nginx_conf nginx "$1" "$NGINX_URL" "  sendfile on;
  tcp_nopush on;
  open_file_cache max=16 inactive=60s;
  open_file_cache_valid 60s;
  server {
    listen 127.0.0.1:$port;
    root $DIR/www;
    default_type application/json;
  }"
  NGINX_PID=$NGINX_STARTED_PID
}

# ------------------------------------------------------------------ wrk --
# measure NAME URL PIDS... : warm-up and measured run (wrk_measure), with
# the POST script that the target needs.
measure() {
  local name=$1 url=$2; shift 2
  local script=()
  case "$name" in
    "nexra POST /v1/agents/register") script=(-s "$DIR/register.lua") ;;
    "nexra POST /v1/policies/evaluate") script=(-s "$DIR/evaluate.lua") ;;
  esac
  NEXRA_BENCH_KEY=$KEY wrk_measure "$name" "$*" -c"$CONNS" \
    -H "Authorization: Bearer $KEY" "${script[@]}" "$url"
}

# Rounds interleave the targets so drift on a shared box (neighbours, CPU
# frequency) falls on all of them alike; each figure below is the median
# over the rounds, and each ratio the median of the per-round ratios.
for round in $(seq "$ROUNDS"); do
  ROUND_TAG=$round
  start_nginx 1
  measure "nginx static, 1 worker" "$NGINX_URL" $(nginx_pids "$NGINX_PID")
  stop_pid "$NGINX_PID"; NGINX_PID=""

  measure "nexra GET /v1/agents/{id}" "$GET_URL" "$NEXRA_PID"
  measure "nexra POST /v1/policies/evaluate" "$BASE/v1/policies/evaluate" "$NEXRA_PID"

  start_nginx 2
  measure "nginx static, 2 workers" "$NGINX_URL" $(nginx_pids "$NGINX_PID")
  stop_pid "$NGINX_PID"; NGINX_PID=""

  measure "nexra POST /v1/agents/register" "$BASE/v1/agents/register" "$NEXRA_PID"
done
TARGETS=("nginx static, 1 worker" "nexra GET /v1/agents/{id}" "nexra POST /v1/policies/evaluate" "nginx static, 2 workers" "nexra POST /v1/agents/register")

# --------------------------------------------------------------- report --

echo
echo "nexra bench: wrk 1 thread, $CONNS connections, ${WARMUP}s warm-up + ${DURATION}s per target, $ROUNDS rounds,"
echo "loopback, $(nproc) CPUs; nexra on SQLite (WAL, synchronous=FULL), $(nexra_threads) threads,"
echo "rate limiter on (growth raised to 1000000/min)"
echo "static file and agent GET body: $BODY_BYTES bytes each"
bench_versions
busy_warning "$BUSY_BEFORE"
echo
printf '%-34s %10s %9s %9s %9s %9s %8s\n' target req/s p50_ms p99_ms non-2xx sock_err cpu_us
for t in "${TARGETS[@]}"; do
  printf '%-34s %10s %9s %9s %9s %9s %8s\n' "$t" "$(median_of RPS "$t")" "$(median_of P50 "$t")" \
    "$(median_of P99 "$t")" "$(sum_of NON2XX "$t")" "$(sum_of SOCKERR "$t")" "$(median_of CPU "$t")"
done
echo "(medians over $ROUNDS rounds; non-2xx and socket errors summed; cpu_us: server CPU"
echo " time per request, all its threads/processes)"

G="nexra GET /v1/agents/{id}" P="nexra POST /v1/agents/register" EV="nexra POST /v1/policies/evaluate"
N1="nginx static, 1 worker" N2="nginx static, 2 workers"
echo
echo "ratios (nexra req/s over nginx static req/s, median of per-round ratios):"
printf '  %-32s %8s x (1 worker)  %8s x (2 workers)\n' "GET /v1/agents/{id}" "$(paired_ratio RPS "$G" "$N1")" "$(paired_ratio RPS "$G" "$N2")"
printf '  %-32s %8s x (1 worker)  %8s x (2 workers)\n' "POST /v1/agents/register" "$(paired_ratio RPS "$P" "$N1")" "$(paired_ratio RPS "$P" "$N2")"
printf '  %-32s %8s x (1 worker)  %8s x (2 workers)\n' "POST /v1/policies/evaluate" "$(paired_ratio RPS "$EV" "$N1")" "$(paired_ratio RPS "$EV" "$N2")"

echo
echo "server CPU per request, nexra over nginx (steadier than req/s on a busy box):"
printf '  %-32s %8s x nginx (1 worker)\n' "GET /v1/agents/{id}" "$(paired_ratio CPU "$G" "$N1")"
printf '  %-32s %8s x nginx (1 worker)\n' "POST /v1/agents/register" "$(paired_ratio CPU "$P" "$N1")"

verdict() { awk -v r="$1" -v g="$GOAL" 'BEGIN { print (r != "-" && r + 0 >= g) ? "PASS" : "FAIL" }'; }
R1=$(paired_ratio RPS "$G" "$N1"); R2=$(paired_ratio RPS "$G" "$N2")
echo
echo "goal: authenticated GET /v1/agents/{id} >= ${GOAL}x nginx static"
echo "  vs nginx 1 worker:  ${R1}x  $(verdict "$R1")"
echo "  vs nginx 2 workers: ${R2}x  $(verdict "$R2")"

# A run where nexra mostly answered errors measures nothing.
broken=0
for t in "$G" "$P" "$EV"; do
  if too_many_errors "$t"; then
    tail -n 5 "$DIR/nexra.err" >&2 || true
    broken=1
  fi
done
exit "$broken"

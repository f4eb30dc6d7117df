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
DURATION=${BENCH_DURATION:-5}
ROUNDS=${BENCH_ROUNDS:-3}
WARMUP=${BENCH_WARMUP:-2}
CONNS=${BENCH_CONNECTIONS:-32}
NGINX=${NGINX:-/usr/sbin/nginx}
GOAL=0.5

die() { echo "bench: $*" >&2; exit 1; }

[ -x "$NEXRA" ] || die "$NEXRA is not an executable"
command -v wrk >/dev/null || die "wrk is not installed (make bootstrap)"
[ -x "$NGINX" ] || die "$NGINX is not installed (make bootstrap)"
command -v curl >/dev/null || die "curl is not installed"

DIR=$(mktemp -d -t nexra-bench.XXXXXX)
NEXRA_PID=""
NGINX_PID=""

stop_pid() {
  local pid=$1
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  stop_pid "$NGINX_PID"
  stop_pid "$NEXRA_PID"
  rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# CPU ticks (utime + stime) used so far by the given pids.
cpu_ticks() {
  local total=0 pid stat
  for pid in "$@"; do
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    # Fields after the command name (which may hold spaces) start at 3.
    stat=${stat##*) }
    set -- $stat
    total=$((total + ${12} + ${13}))
  done
  echo "$total"
}

HZ=$(getconf CLK_TCK)
# Other work on the box skews both servers, not always equally: measure
# how busy the CPUs are for one second before starting, and say so.
cpu_busy_pct() {
  local a b
  a=$(head -n1 /proc/stat); sleep 1; b=$(head -n1 /proc/stat)
  printf '%s\n%s\n' "$a" "$b" | awk '{ idle[NR] = $5 + $6; tot[NR] = 0
    for (i = 2; i <= NF; i++) tot[NR] += $i }
    END { d = tot[2] - tot[1]; printf "%d", (d > 0) ? 100 * (1 - (idle[2] - idle[1]) / d) : 0 }'
}
BUSY_BEFORE=$(cpu_busy_pct)

# ---------------------------------------------------------------- nexra --
"$NEXRA" serve --listen 127.0.0.1:0 --db "sqlite:$DIR/nexra.db" --dev \
  --signup open --rate-limits starter=100,growth=1000000 \
  --master-key-file "$DIR/master.key" >"$DIR/nexra.out" 2>"$DIR/nexra.err" &
NEXRA_PID=$!

BASE=""
for _ in $(seq 100); do
  BASE=$(grep -m1 -o 'listening on http://[0-9.]*:[0-9]*' "$DIR/nexra.out" "$DIR/nexra.err" 2>/dev/null \
         | head -n1 | sed 's/.*listening on //') || true
  [ -n "$BASE" ] && break
  kill -0 "$NEXRA_PID" 2>/dev/null || { cat "$DIR/nexra.err" >&2; die "nexra exited at start"; }
  sleep 0.1
done
[ -n "$BASE" ] || { tail -n 20 "$DIR/nexra.err" >&2; die "nexra printed no 'listening on' line"; }
for _ in $(seq 100); do
  curl -fsS -o /dev/null "$BASE/healthz" 2>/dev/null && break
  sleep 0.1
done
curl -fsS -o /dev/null "$BASE/healthz" || die "nexra at $BASE never answered /healthz"

ORG=$(curl -sS -X POST "$BASE/v1/orgs/register" -H 'Content-Type: application/json' \
  -d '{"name":"bench","plan":"growth"}')
KEY=$(printf '%s' "$ORG" | grep -o '"api_key": *"nx_live_[a-z0-9]*"' | grep -o 'nx_live_[a-z0-9]*' || true)
[ -n "$KEY" ] || die "org register failed: $ORG"

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
  local workers=$1 port user=""
  port=$(free_port)
  [ "$(id -u)" = 0 ] && user="user root;"
  mkdir -p "$DIR/nginx/tmp"
  cat >"$DIR/nginx/nginx.conf" <<EOF
$user
worker_processes $workers;
pid $DIR/nginx/nginx.pid;
error_log $DIR/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  open_file_cache max=16 inactive=60s;
  open_file_cache_valid 60s;
  keepalive_timeout 65;
  keepalive_requests 1000000000;
  client_body_temp_path $DIR/nginx/tmp/body;
  proxy_temp_path $DIR/nginx/tmp/proxy;
  fastcgi_temp_path $DIR/nginx/tmp/fastcgi;
  uwsgi_temp_path $DIR/nginx/tmp/uwsgi;
  scgi_temp_path $DIR/nginx/tmp/scgi;
  server {
    listen 127.0.0.1:$port;
    root $DIR/www;
    default_type application/json;
  }
}
EOF
  "$NGINX" -e "$DIR/nginx/error.log" -p "$DIR/nginx" -c "$DIR/nginx/nginx.conf" \
    -g 'daemon off;' >>"$DIR/nginx/stdout.log" 2>&1 &
  NGINX_PID=$!
  NGINX_URL="http://127.0.0.1:$port/agent.json"
  for _ in $(seq 100); do
    curl -fsS -o /dev/null "$NGINX_URL" 2>/dev/null && return 0
    kill -0 "$NGINX_PID" 2>/dev/null || break
    sleep 0.1
  done
  cat "$DIR/nginx/error.log" >&2 || true
  die "nginx did not start"
}

# The nginx master and its workers.
nginx_pids() {
  echo "$NGINX_PID"
  pgrep -P "$NGINX_PID" || true
}

# ------------------------------------------------------------------ wrk --
# measure NAME URL PIDS... : warm-up, measured run, parsed into RESULTS.
# With NEXRA_BENCH_RUN set in the environment, uses the POST script.
declare -a NAMES=() RPS=() P50=() P99=() NON2XX=() TOTAL=() SOCKERR=() CPU=()

measure() {
  local name=$1 url=$2; shift 2
  local pids=("$@") script=() out t0 t1
  case "$name" in
    "nexra POST /v1/agents/register") script=(-s "$DIR/register.lua") ;;
    "nexra POST /v1/policies/evaluate") script=(-s "$DIR/evaluate.lua") ;;
  esac
  NEXRA_BENCH_KEY=$KEY NEXRA_BENCH_RUN=w$ROUND_TAG wrk -t1 -c"$CONNS" -d"${WARMUP}s" \
    -H "Authorization: Bearer $KEY" "${script[@]}" "$url" >/dev/null
  t0=$(cpu_ticks "${pids[@]}")
  out=$(NEXRA_BENCH_KEY=$KEY NEXRA_BENCH_RUN=m$ROUND_TAG wrk -t1 -c"$CONNS" -d"${DURATION}s" \
    --latency -H "Authorization: Bearer $KEY" "${script[@]}" "$url")
  t1=$(cpu_ticks "${pids[@]}")
  printf '%s\n' "$out" >"$DIR/wrk-${#NAMES[@]}.txt"

  NAMES+=("$name")
  RPS+=("$(printf '%s\n' "$out" | awk '/^Requests\/sec:/ {print $2}')")
  P50+=("$(printf '%s\n' "$out" | awk -f "$DIR/ms.awk" -v pct=50%)")
  P99+=("$(printf '%s\n' "$out" | awk -f "$DIR/ms.awk" -v pct=99%)")
  TOTAL+=("$(printf '%s\n' "$out" | awk '/requests in/ {print $1}')")
  NON2XX+=("$(printf '%s\n' "$out" | awk '/Non-2xx or 3xx responses:/ {n=$NF} END {print n+0}')")
  SOCKERR+=("$(printf '%s\n' "$out" | awk -F'[ ,]+' '/Socket errors:/ {s = $5 + $7 + $9 + $11} END {print s + 0}')")
  local total=${TOTAL[-1]:-0}
  CPU+=("$(awk -v d=$((t1 - t0)) -v hz="$HZ" -v n="$total" 'BEGIN { if (n > 0) printf "%.1f", d * 1e6 / hz / n; else print "-" }')")
}

# Latency of one percentile line of `wrk --latency`, in ms.
cat >"$DIR/ms.awk" <<'EOF'
$1 == pct && !done {
  v = $2; mult = 1
  if (v ~ /us$/) { mult = 0.001; sub(/us$/, "", v) }
  else if (v ~ /ms$/) { sub(/ms$/, "", v) }
  else if (v ~ /m$/) { mult = 60000; sub(/m$/, "", v) }
  else if (v ~ /s$/) { mult = 1000; sub(/s$/, "", v) }
  printf "%.2f\n", v * mult; done = 1
}
EOF

# Rounds interleave the targets so drift on a shared box (neighbours, CPU
# frequency) falls on all of them alike; each figure below is the median
# over the rounds, and each ratio the median of the per-round ratios.
for round in $(seq "$ROUNDS"); do
  ROUND_TAG=$round
  start_nginx 1
  measure "nginx static, 1 worker" "$NGINX_URL" $(nginx_pids)
  stop_pid "$NGINX_PID"; NGINX_PID=""

  measure "nexra GET /v1/agents/{id}" "$GET_URL" "$NEXRA_PID"
  measure "nexra POST /v1/policies/evaluate" "$BASE/v1/policies/evaluate" "$NEXRA_PID"

  start_nginx 2
  measure "nginx static, 2 workers" "$NGINX_URL" $(nginx_pids)
  stop_pid "$NGINX_PID"; NGINX_PID=""

  measure "nexra POST /v1/agents/register" "$BASE/v1/agents/register" "$NEXRA_PID"
done
TARGETS=("nginx static, 1 worker" "nexra GET /v1/agents/{id}" "nexra POST /v1/policies/evaluate" "nginx static, 2 workers" "nexra POST /v1/agents/register")

# median_of FIELD_ARRAY_NAME TARGET: median of that field over the rounds.
median_of() {
  local -n arr=$1
  local i vals=()
  for i in "${!NAMES[@]}"; do
    [ "${NAMES[$i]}" = "$2" ] && vals+=("${arr[$i]}")
  done
  printf '%s\n' "${vals[@]}" | sort -g | awk '{v[NR]=$1} END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR+1)/2]; else printf "%.2f\n", (v[NR/2] + v[NR/2+1]) / 2 }'
}
sum_of() {
  local -n arr=$1
  local i t=0
  for i in "${!NAMES[@]}"; do
    [ "${NAMES[$i]}" = "$2" ] && t=$((t + ${arr[$i]:-0}))
  done
  echo "$t"
}
# median over rounds of (field of target A) / (field of target B), paired by round.
paired_ratio() {
  local -n arr=$1
  local a=$2 b=$3 i ai=() bi=() r=()
  for i in "${!NAMES[@]}"; do
    [ "${NAMES[$i]}" = "$a" ] && ai+=("${arr[$i]}")
    [ "${NAMES[$i]}" = "$b" ] && bi+=("${arr[$i]}")
  done
  for i in "${!ai[@]}"; do
    r+=("$(awk -v x="${ai[$i]}" -v y="${bi[$i]:-0}" 'BEGIN { if (y > 0) printf "%.4f", x / y; else print 0 }')")
  done
  printf '%s\n' "${r[@]}" | sort -g | awk '{v[NR]=$1} END { if (NR == 0) print "-"; else if (NR % 2) printf "%.2f\n", v[(NR+1)/2]; else printf "%.2f\n", (v[NR/2] + v[NR/2+1]) / 2 }'
}

# --------------------------------------------------------------- report --
# The server's thread count, from its startup log line.
nexra_threads() {
  local t
  t=$(grep -h -o -m1 'threads=[0-9]*' "$DIR/nexra.err" "$DIR/nexra.out" 2>/dev/null | head -n1 | cut -d= -f2)
  echo "${t:-?}"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

echo
echo "nexra bench: wrk 1 thread, $CONNS connections, ${WARMUP}s warm-up + ${DURATION}s per target, $ROUNDS rounds,"
echo "loopback, $(nproc) CPUs; nexra on SQLite (WAL, synchronous=FULL), $(nexra_threads) threads,"
echo "rate limiter on (growth raised to 1000000/min)"
echo "static file and agent GET body: $BODY_BYTES bytes each"
echo "$("$NEXRA" version 2>/dev/null || echo nexra), $("$NGINX" -v 2>&1 | sed 's/.*: //'), $(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2)"
if [ "$BUSY_BEFORE" -gt 10 ]; then
  echo "warning: the CPUs were ${BUSY_BEFORE}% busy before the run: other processes"
  echo "         compete with both servers, so these figures (ratios too) are unreliable"
fi
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
  bad=$(sum_of NON2XX "$t") n=$(sum_of TOTAL "$t")
  if awk -v bad="$bad" -v n="$n" 'BEGIN { exit !(n == 0 || (bad + 0) > 0.01 * n) }'; then
    echo "bench: $t: $bad of $n responses were not 2xx; see the server log" >&2
    tail -n 5 "$DIR/nexra.err" >&2 || true
    broken=1
  fi
done
exit "$broken"

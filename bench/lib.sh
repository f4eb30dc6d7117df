# shellcheck shell=bash
# Shell functions shared by bench/run.sh and bench/delegate.sh (sourced,
# not run). Both scripts set NEXRA, NGINX and DIR (their mktemp -d
# directory) before calling anything here, and use `set -euo pipefail`.
#
# Results of wrk runs are kept in parallel arrays, one entry per measured
# run: NAMES, RPS, P50, P99, TOTAL, NON2XX, SOCKERR, CPU; WARM_TOTAL and
# WARM_NON2XX hold the same counts for the warm-up run before each.

die() { echo "bench: $*" >&2; exit 1; }

# bench_require NEXRA NGINX: the tools every bench needs.
bench_require() {
  [ -x "$1" ] || die "$1 is not an executable"
  command -v wrk >/dev/null || die "wrk is not installed (make bootstrap)"
  [ -x "$2" ] || die "$2 is not installed (make bootstrap)"
  command -v curl >/dev/null || die "curl is not installed"
  command -v python3 >/dev/null || die "python3 is not installed"
}

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
    # shellcheck disable=SC2086 # split into fields on purpose
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

# bench_versions: one report line naming nexra, nginx and wrk.
bench_versions() {
  echo "$("$NEXRA" version 2>/dev/null || echo nexra), $("$NGINX" -v 2>&1 | sed 's/.*: //'), $(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2)"
}

# busy_warning PCT: the report's warning when the box was busy beforehand.
busy_warning() {
  if [ "$1" -gt 10 ]; then
    echo "warning: the CPUs were ${1}% busy before the run: other processes"
    echo "         compete with the servers, so these figures (ratios too) are unreliable"
  fi
}

# ---------------------------------------------------------------- nexra --
# start_nexra NEXRA [extra serve options...]: a throwaway server on a free
# loopback port with a fresh SQLite file in $DIR, the rate limiter on but
# out of reach; waits until /healthz answers. Sets NEXRA_PID and BASE.
start_nexra() {
  local bin=$1; shift
  "$bin" serve --listen 127.0.0.1:0 --db "sqlite:$DIR/nexra.db" --dev \
    --signup open --rate-limits starter=100,growth=1000000 \
    --master-key-file "$DIR/master.key" "$@" >"$DIR/nexra.out" 2>"$DIR/nexra.err" &
  NEXRA_PID=$!

  BASE=""
  for _ in $(seq "${NEXRA_START_TRIES:-100}"); do
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
}

# register_org NAME: a growth org on $BASE; sets KEY to its live API key.
register_org() {
  local org
  org=$(curl -sS -X POST "$BASE/v1/orgs/register" -H 'Content-Type: application/json' \
    -d "{\"name\":\"$1\",\"plan\":\"growth\"}")
  KEY=$(printf '%s' "$org" | grep -o '"api_key": *"nx_live_[a-z0-9]*"' | grep -o 'nx_live_[a-z0-9]*' || true)
  [ -n "$KEY" ] || die "org register failed: $org"
}

# api_call EXPECTED_CODE METHOD PATH [BODY] [extra curl args...]: one
# authenticated call to $BASE; dies unless it answers EXPECTED_CODE.
# The body is left in $DIR/api.json.
api_call() {
  local want=$1 method=$2 path=$3 body=${4:-} code
  shift 3; [ $# -gt 0 ] && shift
  code=$(curl -sS -o "$DIR/api.json" -w '%{http_code}' -X "$method" "$BASE$path" \
    -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
    ${body:+-d "$body"} "$@")
  [ "$code" = "$want" ] || die "$method $path answered $code: $(cat "$DIR/api.json")"
}

# The server's thread count, from its startup log line.
nexra_threads() {
  local t
  t=$(grep -h -o -m1 'threads=[0-9]*' "$DIR/nexra.err" "$DIR/nexra.out" 2>/dev/null | head -n1 | cut -d= -f2)
  echo "${t:-?}"
}

# ---------------------------------------------------------------- nginx --
# start_nginx_conf NAME WORKERS CHECK_URL HTTP_BLOCK: an nginx in $DIR/NAME
# with WORKERS workers; HTTP_BLOCK is added to a common http {} (no access
# log, keep-alive connections never closed by request count) and holds the
# server block with its listen line. Waits until CHECK_URL answers
# (with curl's extra arguments in CHECK_CURL, if set). Sets NGINX_STARTED_PID.
start_nginx_conf() {
  local name=$1 workers=$2 check=$3 block=$4 d=$DIR/$1 user=""
  [ "$(id -u)" = 0 ] && user="user root;"
  mkdir -p "$d/tmp"
  cat >"$d/nginx.conf" <<EOF
$user
worker_processes $workers;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_timeout 65;
  keepalive_requests 1000000000;
  client_body_temp_path $d/tmp/body;
  proxy_temp_path $d/tmp/proxy;
  fastcgi_temp_path $d/tmp/fastcgi;
  uwsgi_temp_path $d/tmp/uwsgi;
  scgi_temp_path $d/tmp/scgi;
$block
}
EOF
  "$NGINX" -e "$d/error.log" -p "$d" -c "$d/nginx.conf" \
    -g 'daemon off;' >>"$d/stdout.log" 2>&1 &
  NGINX_STARTED_PID=$!
  for _ in $(seq 100); do
    # shellcheck disable=SC2086 # CHECK_CURL holds separate arguments
    curl -fsS -o /dev/null ${CHECK_CURL:-} "$check" 2>/dev/null && return 0
    kill -0 "$NGINX_STARTED_PID" 2>/dev/null || break
    sleep 0.1
  done
  cat "$d/error.log" >&2 || true
  die "nginx ($name) did not start"
}

# The nginx master and its workers.
nginx_pids() {
  echo "$1"
  pgrep -P "$1" || true
}

# ------------------------------------------------------------------ wrk --
declare -a NAMES=() RPS=() P50=() P99=() NON2XX=() TOTAL=() SOCKERR=() CPU=()
declare -a WARM_TOTAL=() WARM_NON2XX=()
WARMUP=${BENCH_WARMUP:-2}
DURATION=${BENCH_DURATION:-5}

# Latency of one percentile line (pct=50% or 99%) of `wrk --latency`, in ms.
wrk_ms() {
  awk -v pct="$1" '$1 == pct && !done {
    v = $2; mult = 1
    if (v ~ /us$/) { mult = 0.001; sub(/us$/, "", v) }
    else if (v ~ /ms$/) { sub(/ms$/, "", v) }
    else if (v ~ /m$/) { mult = 60000; sub(/m$/, "", v) }
    else if (v ~ /s$/) { mult = 1000; sub(/s$/, "", v) }
    printf "%.2f\n", v * mult; done = 1
  }'
}
wrk_total() { awk '/requests in/ {print $1}'; }
wrk_non2xx() { awk '/Non-2xx or 3xx responses:/ {n=$NF} END {print n+0}'; }

# wrk_measure NAME "PIDS" WRK_ARGS...: a warm-up of $WARMUP s (counted in
# WARM_*, otherwise discarded), then a measured run of $DURATION s with
# --latency, both `wrk -t1 WRK_ARGS...`, parsed into the arrays above. CPU
# is the server CPU time per request of PIDS (µs) over the measured run.
# NEXRA_BENCH_RUN is set to w$ROUND_TAG / m$ROUND_TAG for Lua scripts that
# need a value unique to the run.
wrk_measure() {
  # shellcheck disable=SC2206 # PIDS is a space-separated list
  local name=$1 pids=($2) out t0 t1; shift 2
  out=$(NEXRA_BENCH_RUN=w${ROUND_TAG:-} wrk -t1 -d"${WARMUP}s" "$@")
  WARM_TOTAL+=("$(printf '%s\n' "$out" | wrk_total)")
  WARM_NON2XX+=("$(printf '%s\n' "$out" | wrk_non2xx)")
  t0=$(cpu_ticks "${pids[@]}")
  out=$(NEXRA_BENCH_RUN=m${ROUND_TAG:-} wrk -t1 -d"${DURATION}s" --latency "$@")
  t1=$(cpu_ticks "${pids[@]}")
  printf '%s\n' "$out" >"$DIR/wrk-${#NAMES[@]}.txt"

  NAMES+=("$name")
  RPS+=("$(printf '%s\n' "$out" | awk '/^Requests\/sec:/ {print $2}')")
  P50+=("$(printf '%s\n' "$out" | wrk_ms 50%)")
  P99+=("$(printf '%s\n' "$out" | wrk_ms 99%)")
  TOTAL+=("$(printf '%s\n' "$out" | wrk_total)")
  NON2XX+=("$(printf '%s\n' "$out" | wrk_non2xx)")
  SOCKERR+=("$(printf '%s\n' "$out" | awk -F'[ ,]+' '/Socket errors:/ {s = $5 + $7 + $9 + $11} END {print s + 0}')")
  local total=${TOTAL[-1]:-0}
  CPU+=("$(awk -v d=$((t1 - t0)) -v hz="$HZ" -v n="$total" 'BEGIN { if (n > 0) printf "%.1f", d * 1e6 / hz / n; else print "-" }')")
}

# ---------------------------------------------------------- statistics --
# median of the numbers on stdin ("-" when there are none).
median() {
  sort -g | awk '{v[NR]=$1} END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR+1)/2]; else printf "%.2f\n", (v[NR/2] + v[NR/2+1]) / 2 }'
}

# median_of FIELD_ARRAY_NAME TARGET: median of that field over the rounds.
median_of() {
  local -n arr=$1
  local i vals=()
  for i in "${!NAMES[@]}"; do
    [ "${NAMES[$i]}" = "$2" ] && vals+=("${arr[$i]}")
  done
  [ ${#vals[@]} -gt 0 ] || { echo "-"; return; }
  printf '%s\n' "${vals[@]}" | median
}
# sum_of FIELD_ARRAY_NAME TARGET: sum of that (integer) field over the rounds.
sum_of() {
  local -n arr=$1
  local i t=0
  for i in "${!NAMES[@]}"; do
    [ "${NAMES[$i]}" = "$2" ] && t=$((t + ${arr[$i]:-0}))
  done
  echo "$t"
}
# paired_op ratio|diff FIELD_ARRAY_NAME A B: median over rounds of
# (field of target A) / (field of target B), or A - B, paired by round.
paired_op() {
  local op=$1 a=$3 b=$4 i ai=() bi=() r=()
  local -n arr=$2
  for i in "${!NAMES[@]}"; do
    [ "${NAMES[$i]}" = "$a" ] && ai+=("${arr[$i]}")
    [ "${NAMES[$i]}" = "$b" ] && bi+=("${arr[$i]}")
  done
  for i in "${!ai[@]}"; do
    r+=("$(awk -v op="$op" -v x="${ai[$i]}" -v y="${bi[$i]:-0}" 'BEGIN {
      if (op == "diff") printf "%.4f", x - y
      else if (y > 0) printf "%.4f", x / y; else print 0 }')")
  done
  [ ${#r[@]} -gt 0 ] || { echo "-"; return; }
  printf '%s\n' "${r[@]}" | median | awk '{ if ($1 == "-") print; else printf "%.2f\n", $1 }'
}
paired_ratio() { paired_op ratio "$@"; }
paired_diff() { paired_op diff "$@"; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

# too_many_errors TARGET: true (0) when more than 1% of TARGET's responses
# in its measured runs were not 2xx, or it answered nothing; says so on stderr.
too_many_errors() {
  local bad n
  bad=$(sum_of NON2XX "$1") n=$(sum_of TOTAL "$1")
  if awk -v bad="$bad" -v n="$n" 'BEGIN { exit !(n == 0 || (bad + 0) > 0.01 * n) }'; then
    echo "bench: $1: $bad of $n responses were not 2xx; see the server log" >&2
    return 0
  fi
  return 1
}

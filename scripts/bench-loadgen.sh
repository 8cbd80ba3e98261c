#!/usr/bin/env bash
# Load-generator benchmark: wrk, k6, wasmbench (and oha when installed) against the same native
# echo server, 100 connections keep-alive, POST "hello", same duration, one after another,
# alternating the order over ROUNDS rounds. Prints req/s, ratio to wrk and to k6, and each
# generator's peak RSS (GNU time's "Maximum resident set size").
#
#   scripts/bench-loadgen.sh [DURATION] [ROUNDS]     (default 8s, 2)
# Set WASMBENCH=/path/to/wasmbench to use the cli (`wasmbench load`) instead of the example.
set -euo pipefail

DURATION="${1:-8s}"
ROUNDS="${2:-2}"
SECS="${DURATION%s}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
[[ -x /usr/bin/time ]] || { echo "/usr/bin/time missing: apt-get install time" >&2; exit 2; }

# shellcheck source=bench-common.sh
source "$ROOT/scripts/bench-common.sh"
build_echo_and_load

WORK="$(mktemp -d)"
ECHO_PID=""
cleanup() { [[ -n "$ECHO_PID" ]] && kill "$ECHO_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
start_echo "$WORK/echo.out"

cat >"$WORK/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = "hello"
LUA
cat >"$WORK/k6.js" <<JS
import http from 'k6/http';
export const options = { vus: 100, duration: '$DURATION', summaryTrendStats: ['med', 'p(95)'] };
export default function () { http.post('$URL', 'hello'); }
JS

TOOLS=()
command -v wrk >/dev/null && TOOLS+=(wrk)
command -v k6 >/dev/null && TOOLS+=(k6)
TOOLS+=(wasmbench)
command -v oha >/dev/null && TOOLS+=(oha)

run_tool() { # tool round -> prints "rps rss_kb"
  local t="$1" out="$WORK/$1.$2.out" tm="$WORK/$1.$2.time" rps
  case "$t" in
    wrk) /usr/bin/time -v -o "$tm" wrk -t2 -c100 -d"$DURATION" -s "$WORK/post.lua" "$URL" >"$out" 2>&1
         rps=$(awk '/Requests\/sec/ {print $2}' "$out") ;;
    k6)  /usr/bin/time -v -o "$tm" k6 run --quiet --no-usage-report --summary-export "$out.json" "$WORK/k6.js" >"$out" 2>&1
         rps=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['metrics']['http_reqs']['rate'])" "$out.json") ;;
    wasmbench) /usr/bin/time -v -o "$tm" "${LOAD[@]}" "$URL" --vus 100 -d "$DURATION" --body hello --quiet --summary-export "$out.json" >"$out" 2>&1
         rps=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['metrics']['http_reqs']['rate'])" "$out.json") ;;
    oha) /usr/bin/time -v -o "$tm" oha -c 100 -z "$DURATION" -m POST -d hello --no-tui --output-format json "$URL" >"$out" 2>&1
         rps=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['summary']['requestsPerSec'])" "$out") ;;
  esac
  echo "$rps $(awk -F: '/Maximum resident set size/ {gsub(/ /,"",$2); print $2}' "$tm")"
}

echo "echo server $URL; 100 connections keep-alive, POST 'hello', $DURATION per run, $ROUNDS rounds; $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A RPS RSS
for r in $(seq 1 "$ROUNDS"); do
  order=("${TOOLS[@]}")
  if (( r % 2 == 0 )); then # reverse the order every other round
    order=(); for (( i=${#TOOLS[@]}-1; i>=0; i-- )); do order+=("${TOOLS[$i]}"); done
  fi
  for t in "${order[@]}"; do
    read -r rps rss < <(run_tool "$t" "$r")
    RPS[$t,$r]=$rps; RSS[$t,$r]=$rss
    printf "round %d  %-10s %10.0f req/s  peak RSS %6d KB\n" "$r" "$t" "$rps" "$rss"
  done
done

echo
echo "| generator | req/s per round | mean req/s | vs wrk | vs k6 | peak RSS (MB) |"
echo "|---|---|---|---|---|---|"
for t in "${TOOLS[@]}"; do
  sum=0
  for r in $(seq 1 "$ROUNDS"); do sum=$(python3 -c "print($sum + ${RPS[$t,$r]})"); done
  mean=$(python3 -c "print($sum / $ROUNDS)")
  eval "MEAN_$t=$mean"
done
for t in "${TOOLS[@]}"; do
  vals=""; rssmax=0
  for r in $(seq 1 "$ROUNDS"); do
    vals+="$(printf '%.0f' "${RPS[$t,$r]}") "
    if (( ${RSS[$t,$r]} > rssmax )); then rssmax=${RSS[$t,$r]}; fi
  done
  eval "mean=\$MEAN_$t"
  vs_wrk="-"; vs_k6="-"
  [[ -n "${MEAN_wrk:-}" ]] && vs_wrk=$(python3 -c "print(f'{$mean / $MEAN_wrk:.2f}x')")
  [[ -n "${MEAN_k6:-}" ]] && vs_k6=$(python3 -c "print(f'{$mean / $MEAN_k6:.2f}x')")
  printf "| %s | %s| %.0f | %s | %s | %.1f |\n" "$t" "$vals" "$mean" "$vs_wrk" "$vs_k6" "$(python3 -c "print($rssmax/1024)")"
done

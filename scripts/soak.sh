#!/usr/bin/env bash
# Soak test: runs `wasmbench compare` for about 10 minutes and reports whether memory stays
# flat and nothing fails.
#
#   scripts/soak.sh [TOTAL]        (default 10m; each variant gets TOTAL / number of variants)
#
# Environment:
#   VARIANTS   variants to soak (default native,wasmtime-wasip2)
#   VUS        virtual users (default 100, the demo's)
#   WORKLOAD   --workload of compare (default mix: every endpoint, so every code path soaks)
#   WASMBENCH  wasmbench executable to use (default: built here with `cargo build --release`)
#   OUT        where the comparison and the RSS samples go (default: a new temporary directory)
#
# While compare runs, the RSS of wasmbench and of every server process it starts is sampled
# from /proc every 5 s. Per process, growth = last sample - first sample taken after the
# process has run for SETTLE seconds (default 60: warm-up, JIT caches and allocator pools are
# filled by then). Verdict: PASS when every process grows by less than 10% and 4 MiB and the
# comparison has 0 failed requests and 0 transport errors; otherwise FAIL (exit 1).
set -euo pipefail

TOTAL="${1:-10m}"
VARIANTS="${VARIANTS:-native,wasmtime-wasip2}"
VUS="${VUS:-100}"
WORKLOAD="${WORKLOAD:-mix}"
SETTLE="${SETTLE:-60}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${OUT:-$(mktemp -d /tmp/wasmbench-soak.XXXXXX)}"
mkdir -p "$OUT"

to_seconds() {
  local v="$1"
  case "$v" in
    *h) echo $(( ${v%h} * 3600 )) ;;
    *m) echo $(( ${v%m} * 60 )) ;;
    *s) echo "${v%s}" ;;
    *[!0-9]*|"") echo "bad duration '$v': use e.g. 600s, 10m or 1h" >&2; exit 2 ;;
    *) echo "$v" ;;
  esac
}
total_s="$(to_seconds "$TOTAL")"
n_variants="$(tr ',' '\n' <<<"$VARIANTS" | grep -c .)"
per_variant=$(( total_s / n_variants ))
(( per_variant >= 2 * SETTLE )) || {
  echo "TOTAL=$TOTAL leaves ${per_variant}s per variant; give at least $(( 2 * SETTLE * n_variants ))s" >&2
  exit 2
}

if [[ -z "${WASMBENCH:-}" ]]; then
  cargo build --quiet --release --manifest-path "$ROOT/Cargo.toml" -p wasmbench
  WASMBENCH="${CARGO_TARGET_DIR:-$ROOT/target}/release/wasmbench"
fi

echo "soak: $VARIANTS, workload $WORKLOAD, $VUS VUs, ${per_variant}s per variant, results in $OUT"
SAMPLES="$OUT/rss.csv"
echo "t_s,pid,role,rss_kb" >"$SAMPLES"

"$WASMBENCH" compare --variants "$VARIANTS" --workload "$WORKLOAD" --vus "$VUS" \
  --duration "${per_variant}s" --repeats 1 --warmup 10s --cold-starts 1 \
  --format text --out "$OUT/comparison" >"$OUT/compare.out" 2>"$OUT/compare.err" &
WB_PID=$!
trap 'kill -INT "$WB_PID" 2>/dev/null || true' INT TERM

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || true; }
start=$(date +%s)
# Bounded: compare ends by itself; the loop also stops 15 minutes past the planned end.
while kill -0 "$WB_PID" 2>/dev/null && (( $(date +%s) - start < total_s + 900 )); do
  t=$(( $(date +%s) - start ))
  r="$(rss_kb "$WB_PID")"
  [[ -n "$r" ]] && echo "$t,$WB_PID,wasmbench,$r" >>"$SAMPLES"
  for c in $(pgrep -P "$WB_PID" || true); do
    r="$(rss_kb "$c")"
    role="$(tr '\0' ' ' <"/proc/$c/cmdline" 2>/dev/null | cut -c1-80 || true)"
    [[ -n "$r" ]] && echo "$t,$c,server: ${role//,/ },$r" >>"$SAMPLES"
  done
  sleep 5
done
status=0
wait "$WB_PID" || status=$?
echo "compare exited with $status"
[[ $status -eq 0 ]] || { tail -5 "$OUT/compare.err" >&2; }

python3 - "$OUT" "$SETTLE" "$status" <<'PY'
import csv, json, os, sys
out, settle, status = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
procs = {}
for row in csv.DictReader(open(os.path.join(out, "rss.csv"))):
    p = procs.setdefault(row["pid"], {"role": row["role"], "samples": []})
    p["samples"].append((int(row["t_s"]), int(row["rss_kb"])))
bad = []
print("\n| process | lived | RSS after settling | RSS at end | growth | peak |")
print("|---|---|---|---|---|---|")
for pid, p in procs.items():
    s = p["samples"]
    t0 = s[0][0]
    settled = [x for x in s if x[0] - t0 >= settle]
    lived = s[-1][0] - t0
    if len(settled) < 2:
        continue  # short-lived: cold-start probes and priming starts
    first, last = settled[0][1], settled[-1][1]
    growth = last - first
    peak = max(x[1] for x in s)
    role = " ".join(p["role"].split())[:70]
    pct = 100.0 * growth / first if first else 0.0
    print(f"| {role} pid {pid} | {lived} s | {first/1024:.1f} MiB | {last/1024:.1f} MiB | {growth/1024:+.2f} MiB ({pct:+.1f}%) | {peak/1024:.1f} MiB |")
    if growth > 4096 and pct > 10.0:
        bad.append(f"{role} pid {pid} grew {growth/1024:.1f} MiB ({pct:.1f}%)")
try:
    c = json.load(open(os.path.join(out, "comparison", "comparison.json")))
except (OSError, ValueError) as e:
    print(f"\nno comparison.json: {e}")
    sys.exit(1)
print("\n| variant | status | requests | req/s | failed | transport errors | check fails |")
print("|---|---|---|---|---|---|---|")
for v in c["variants"]:
    for r in v["runs"]:
        failed = round(r["http_req_failed_rate"] * r["http_reqs"])
        errors = sum(r["errors"].values())
        print(f"| {v['name']} | {v['status']} | {r['http_reqs']} | {r['throughput_rps']:.0f} | {failed} | {errors} | {r['checks']['fails']} |")
        if failed or errors:
            bad.append(f"{v['name']}: {failed} failed requests, {errors} transport errors")
    if v["status"] != "ok":
        bad.append(f"{v['name']}: {v['status']} {v.get('reason') or ''}")
if status != 0:
    bad.append(f"compare exited with {status}")
print("\nverdict:", "PASS" if not bad else "FAIL: " + "; ".join(bad))
sys.exit(1 if bad else 0)
PY

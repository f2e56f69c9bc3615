#!/usr/bin/env bash
# Load test of GET /reports/leaderboard with wrk over loopback: a report-only node on a
# database seeded with 100 models × 168 hourly snapshots. Budget (docs/benchmarks.md):
# ≥ 10,000 requests/s with p99 ≤ 5 ms on 2 vCPU.
#
#   scripts/bench-leaderboard.sh [wrk options]    (default: -t2 -c32 -d10s)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install wrk" >&2; exit 1; }
scripts/ensure-postgres.sh
db_url="postgres://postgres@127.0.0.1:5432/cn_bench_leaderboard?sslmode=disable"
port=18731
bin="$(mktemp -d)/crunch-node"
go build -o "$bin" ./cmd/crunch-node
DATABASE_URL="$db_url" "$bin" migrate --reset >/dev/null 2>&1
psql -q "$db_url" <<'SQL'
INSERT INTO models (id, name, player_id, player_name, state)
SELECT 'm' || g, 'model ' || g, 'p' || g, 'cruncher ' || g, 'RUNNING' FROM generate_series(1, 100) g;
INSERT INTO snapshots (id, model_id, period_start, period_end, prediction_count, result_summary, value)
SELECT 'SNAP_m' || m || '_' || h, 'm' || m,
       date_trunc('hour', now()) - h * interval '1 hour',
       date_trunc('hour', now()) - (h - 1) * interval '1 hour',
       720, jsonb_build_object('value', v, 'profit', v / 100, 'ic', random() - 0.5, 'hit_rate', random()), v
FROM (SELECT m, h, random() - 0.5 AS v FROM generate_series(1, 100) m, generate_series(0, 167) h) g;
UPDATE leaderboard_refresh SET as_of = now(), ranks = NULL;
REFRESH MATERIALIZED VIEW leaderboard;
SQL
DATABASE_URL="$db_url" REPORT_API_PORT=$port LOG_LEVEL=warn "$bin" run --roles report &
node=$!
trap 'kill $node 2>/dev/null; wait $node 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "http://127.0.0.1:$port/reports/leaderboard" | head -c 200; echo
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ $# -eq 0 ]; then set -- -t2 -c32 -d10s; fi
wrk "$@" --latency "http://127.0.0.1:$port/reports/leaderboard"

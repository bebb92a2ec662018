#!/usr/bin/env bash
# The PDF renewal-plan report: how long the dashboard takes to lay out and write it, over the
# 20,000-main ranking of dashboard/examples/load_server.rs (the plan's default budgets, ten
# fiscal years, Japanese and English), logged in as an engineer.
#
#   bench/dashboard_pdf.sh                 # release build (the figures in BENCHMARKS.md)
#   PROFILE=dev bench/dashboard_pdf.sh     # the test build, for a quick look
#   N=20 bench/dashboard_pdf.sh            # requests per language (default 10)
#
# Reports per language: the first request (the font read and the Typst engine built), then
# the median and worst of N more, the size, the page count and the embedded font (pdfinfo,
# pdffonts). Needs fonts-ipaexfont-gothic and poppler-utils.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/services.sh
N=${N:-10}
PROFILE=${PROFILE:-release}
apt_install curl fonts-ipaexfont-gothic poppler-utils
if [ "$PROFILE" = release ]; then
    cargo build --release -q -p mizumori-dashboard --example load_server
    BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/examples/load_server
else
    cargo build -q -p mizumori-dashboard --example load_server
    BIN=${CARGO_TARGET_DIR:-$PWD/target}/debug/examples/load_server
fi
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait "${pids[@]}" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

port=$(free_port)
password=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
# One series of one day: this benchmark is about the ranking, not the readings.
"$BIN" "$tmp/dashboard.sqlite" --http "127.0.0.1:$port" --password "$password" --devices 1 --points 1 --days 1 \
    > "$tmp/server.log" 2>&1 &
pids+=("$!")
until grep -q "dashboard on" "$tmp/server.log"; do
    kill -0 "${pids[0]}" 2>/dev/null || { cat "$tmp/server.log" >&2; exit 1; }
    sleep 1
done
base="http://127.0.0.1:$port"
curl -fsS -o /dev/null -c "$tmp/cookies" --data-urlencode username=bench --data-urlencode "password=$password" "$base/login"
cookie=$(awk '$6 == "mizumori_session" {print $6 "=" $7}' "$tmp/cookies")
[ -n "$cookie" ] || { echo "login failed" >&2; exit 1; }

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2 / 1048576}' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME"); profile $PROFILE; $(date -u '+%Y-%m-%d %H:%M UTC'); load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-6s %9s %9s %9s %9s %6s %s\n' lang first median worst bytes pages font
for lang in ja en; do
    url="$base/plan/export?format=pdf&lang=$lang"
    first=$(curl -fsS -o "$tmp/plan-$lang.pdf" -w '%{time_total}' -H "Cookie: $cookie" "$url")
    for _ in $(seq "$N"); do
        curl -fsS -o /dev/null -w '%{time_total}\n' -H "Cookie: $cookie" "$url"
    done | sort -n > "$tmp/times"
    median=$(awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}' "$tmp/times")
    worst=$(tail -1 "$tmp/times")
    pages=$(pdfinfo "$tmp/plan-$lang.pdf" | awk '/^Pages:/ {print $2}')
    font=$(pdffonts "$tmp/plan-$lang.pdf" | awk 'NR > 2 {print $1}' | sort -u | paste -sd, -)
    awk -v l="$lang" -v f="$first" -v m="$median" -v w="$worst" -v b="$(stat -c %s "$tmp/plan-$lang.pdf")" -v p="$pages" -v fn="$font" \
        'BEGIN {printf "%-6s %7.0fms %7.0fms %7.0fms %9s %6s %s\n", l, f * 1000, m * 1000, w * 1000, b, p, fn}'
done

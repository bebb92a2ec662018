#!/usr/bin/env bash
# Scores the demo's alert rules and detectors against the simulator's ground truth.
#
#   bench/alerts_score.sh              # a simulated week of the demo city, seeds 1 2 3
#   DAYS=2 SEEDS="4" bench/alerts_score.sh
#   SCORE_VERBOSE=1 bench/alerts_score.sh   # also every event and every alert
#   MODES=register bench/alerts_score.sh     # one mode: register (the flushing programme in the
#                                            # planned-works register) or none; default both
#   RUST_LOG=collector::alerts::detect=debug bench/alerts_score.sh  # the detectors' decisions
#
# Steps sensor-sim's demo scenario (start Monday 08:00 JST, the scripted events, the scored
# week's leak growth and impeller wear (src/alerts/score.rs, SCORED_WEEK_EVENTS) and the
# seed's random ones) one second at a time, decodes every watched point from the devices'
# registers as the collector does, feeds the real alert engine (rules/demo.toml) with an alert
# store in a temporary SQLite file, and matches the alerts to the events
# (src/alerts/score.rs). Prints one table per seed and mode.
set -euo pipefail
cd "$(dirname "$0")/.."
DAYS=${DAYS:-7}
SEEDS=${SEEDS:-1 2 3}
cargo build --release -q --example alerts_score
BIN=${CARGO_TARGET_DIR:-target}/release/examples/alerts_score
for seed in $SEEDS; do
    "$BIN" "$DAYS" "$seed"
done

#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs the whole test suite.
# README command (B); .ci/run runs exactly this.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
# shellcheck disable=SC1091
source "$ROOT/.venv/rrl.env"
cd "$ROOT"
# Every ROS 2 participant of the tests stays on loopback.
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
cargo test --workspace --locked -j "${CARGO_BUILD_JOBS:-2}" "$@"

#!/usr/bin/env bash
# The learner benchmark on a GPU machine that has PyTorch but no Rust, ROS or
# MuJoCo: build `learner_bench` elsewhere (cargo build --release -p policies
# --example learner_bench), copy it and shared/peers/torch_sac_update.py
# over, then: gpu_learner_bench.sh ./learner_bench ./torch_sac_update.py [python]
# Prints our JSON line and the peer's for each preset, same run.
set -euo pipefail
BENCH="$1"; PEER="$2"; PY="${3:-python3}"
TORCH_LIB="$("$PY" -c "import torch, os; print(os.path.dirname(torch.__file__) + '/lib')")"
SITE="$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")"
LIBS="$TORCH_LIB"
for d in "$SITE"/nvidia/*/lib; do [ -d "$d" ] && LIBS="$LIBS:$d"; done
export LD_LIBRARY_PATH="$LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
for case in "cleanrl 1" "rlpd 4" "rlpd 20"; do
    set -- $case
    "$BENCH" "$1" "$2" 300 cuda
    "$PY" "$PEER" --preset "$1" --utd "$2" --updates 300 --warmup 30 --device cuda
done

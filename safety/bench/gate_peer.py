"""Peer for `rrl bench gate`: the same per-tick work a Python control stack
would do for a 7-joint arm — staleness and NaN checks, position clamp,
velocity and acceleration limits, an external-force check, the fingertip's
Cartesian box by the Panda's forward kinematics, and a 2x256 ReLU risk
critic with numpy — timed per tick. Prints one JSON line with latency percentiles in µs.
Usage: gate_peer.py TICKS"""
import json
import sys
import time

import numpy as np


# The Panda's (modified) Denavit-Hartenberg table: a, d, alpha per joint.
DH = [(0.0, 0.333, 0.0), (0.0, 0.0, -np.pi / 2), (0.0, 0.316, np.pi / 2), (0.0825, 0.0, np.pi / 2),
      (-0.0825, 0.384, -np.pi / 2), (0.0, 0.0, np.pi / 2), (0.088, 0.0, np.pi / 2)]


def tool_position(q):
    pose = np.eye(4)
    for (a, d, alpha), theta in zip(DH, q):
        ca, sa, ct, st = np.cos(alpha), np.sin(alpha), np.cos(theta), np.sin(theta)
        pose = pose @ np.array([[ct, -st, 0, a], [st * ca, ct * ca, -sa, -d * sa], [st * sa, ct * sa, ca, d * ca], [0, 0, 0, 1]])
    return (pose @ np.array([0.0, 0.0, 0.107 + 0.1034, 1.0]))[:3]


def main() -> int:
    ticks = int(sys.argv[1])
    rng = np.random.default_rng(0)
    n, dt = 7, 0.001
    q_min = np.array([-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973]) + 0.05
    q_max = np.array([2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973]) - 0.05
    v_max = np.array([2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61])
    a_max = np.array([15.0, 7.5, 10.0, 12.5, 15.0, 20.0, 20.0])
    w1 = rng.standard_normal((3 * n, 256)).astype(np.float32) * 0.1
    b1 = np.zeros(256, np.float32)
    w2 = rng.standard_normal((256, 256)).astype(np.float32) * 0.05
    b2 = np.zeros(256, np.float32)
    w3 = rng.standard_normal((256, 1)).astype(np.float32) * 0.05
    b3 = np.zeros(1, np.float32)
    position = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785])
    velocity = np.zeros(n)
    box_min, box_max = np.array([0.2, -0.5, 0.0]), np.array([0.8, 0.5, 0.8])
    wrench = np.array([1.0, -2.0, 3.0, 0.1, 0.0, 0.0])
    latencies = np.empty(ticks)
    for t in range(ticks):
        command = position + rng.uniform(-0.01, 0.01, n)
        state_q, state_v = position, velocity
        stamp_age, command_age = 0.0005, 0.0005
        start = time.perf_counter_ns()
        held = not (np.isfinite(command).all() and np.isfinite(state_q).all()) or stamp_age > 0.05 or command_age > 0.05
        held = held or np.linalg.norm(wrench[:3]) > 30.0
        if not held:
            target = np.clip(command, q_min, q_max)
            v = np.clip((target - position) / dt, -v_max, v_max)
            v = np.clip(v, velocity - a_max * dt, velocity + a_max * dt)
            out = position + v * dt
            start_tool, tool = tool_position(position), tool_position(out)
            if (tool < box_min).any() or (tool > box_max).any() or np.linalg.norm(tool - start_tool) > 0.001:
                out = position
            x = np.concatenate([state_q, state_v, out]).astype(np.float32)
            h = np.maximum(x @ w1 + b1, 0)
            h = np.maximum(h @ w2 + b2, 0)
            risk = 1.0 / (1.0 + np.exp(-(h @ w3 + b3)[0]))
            if risk > 0.99:
                out = position
            position, velocity = out, v
        latencies[t] = (time.perf_counter_ns() - start) / 1000.0
    p50, p99, p999 = np.percentile(latencies, [50, 99, 99.9])
    print(json.dumps({"impl": "numpy", "ticks": ticks, "p50_us": p50, "p99_us": p99, "p999_us": p999, "max_us": latencies.max()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

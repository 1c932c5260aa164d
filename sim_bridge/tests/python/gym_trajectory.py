"""Independent peer for the equivalence test: Python Gymnasium steps a v5
MuJoCo task from its own seeded reset with seeded random actions, and writes
the initial state, the actions and every observation, reward and termination
flag as JSON. Usage: gym_trajectory.py TASK_ID SEED STEPS OUT_JSON"""
import json
import sys

import gymnasium as gym
import numpy as np


def main() -> int:
    task, seed, steps, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    # The unwrapped env: no TimeLimit or order checks, so stepping goes on
    # after a termination and every step is compared.
    env = gym.make(task).unwrapped
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    low, high = env.action_space.low, env.action_space.high
    record = {
        "qpos": env.data.qpos.tolist(),
        "qvel": env.data.qvel.tolist(),
        "actions": [],
        "observations": [],
        "rewards": [],
        "terminated": [],
    }
    for _ in range(steps):
        action = rng.uniform(low, high)
        obs, reward, terminated, _, _ = env.step(action)
        record["actions"].append(action.tolist())
        record["observations"].append(obs.tolist())
        record["rewards"].append(float(reward))
        record["terminated"].append(bool(terminated))
    with open(out, "w") as f:
        json.dump(record, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())

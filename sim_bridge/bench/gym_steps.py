"""Peer for `rrl bench sim`: steps a Gymnasium task the way a Python user
does (gym.make with its default wrappers, random actions from the action
space, reset when an episode ends) and prints one JSON line with steps/s.
Usage: gym_steps.py TASK_ID STEPS SEED"""
import json
import sys
import time

import gymnasium as gym


def main() -> int:
    task, steps, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    env = gym.make(task)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    start = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    seconds = time.perf_counter() - start
    print(json.dumps({"impl": "gymnasium", "task": task, "steps": steps, "seconds": seconds, "steps_per_s": steps / seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

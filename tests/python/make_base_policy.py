"""Test setup for residual RL: exports two tiny policies as TorchScript
with the venv's torch (never downloaded): `chunk.pt` maps a 17-value
observation (the simulated Panda reach task's) to an action chunk
[1, 3, 4] (a user's ACT-like policy), and `wrong.pt` returns [1, 5] (a
policy for another robot). Usage: make_base_policy.py OUT_DIR"""
import sys

import torch

out = sys.argv[1]
torch.manual_seed(0)


class Chunk(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Linear(17, 12)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(obs)).reshape(1, 3, 4)


class Wrong(torch.nn.Module):
    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.zeros(1, 5)


torch.jit.script(Chunk()).save(f"{out}/chunk.pt")
torch.jit.script(Wrong()).save(f"{out}/wrong.pt")
print("ok")

"""Test setup for the CLIP-style reward: exports a tiny image encoder and
text encoder as TorchScript with the venv's torch (never downloaded), and
computes the VLM-RM reward of solid-colour frames with numpy, independently
of the Rust implementation. Usage: make_encoders.py OUT_DIR; prints JSON."""
import json
import sys

import numpy as np
import torch

out = sys.argv[1]
torch.manual_seed(0)
W = torch.randn(4, 8)


class ImageEncoder(torch.nn.Module):
    def __init__(self, w):
        super().__init__()
        self.w = w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(2, 3))
        return torch.cat([mean, torch.full([x.shape[0], 1], 0.1)], dim=1) @ self.w


PROMPTS = {
    "a red cube": [1.0, 0.0, 0.0, 0.1],
    "a scene": [0.3, 0.3, 0.3, 0.1],
    "a blue cube": [0.0, 0.0, 1.0, 0.1],
}


class TextEncoder(torch.nn.Module):
    def __init__(self, w, table):
        super().__init__()
        self.w = w
        self.table = table

    def forward(self, text: str) -> torch.Tensor:
        if text in self.table:
            return self.table[text] @ self.w
        return torch.full([4], 0.25) @ self.w


table = {k: torch.tensor(v) for k, v in PROMPTS.items()}
torch.jit.script(ImageEncoder(W)).save(f"{out}/image_encoder.pt")
torch.jit.script(TextEncoder(W, table)).save(f"{out}/text_encoder.pt")
torch.jit.script(TextEncoder(torch.randn(4, 5), table)).save(f"{out}/text_encoder_5d.pt")

w = W.numpy().astype(np.float64)
unit = lambda v: v / np.linalg.norm(v)
COLOURS = [[255, 0, 0], [200, 40, 40], [0, 0, 255], [128, 128, 128], [0, 255, 0]]
expected = {}
for goal in ["a red cube", "a blue cube"]:
    for alpha in [0.0, 0.5, 1.0]:
        g = unit(np.array(PROMPTS[goal]) @ w)
        b = unit(np.array(PROMPTS["a scene"]) @ w)
        d = g - b
        P = alpha * np.outer(d, d) / d.dot(d) + (1 - alpha) * np.eye(8)
        rewards = []
        for c in COLOURS:
            x = unit(np.array([c[0] / 255, c[1] / 255, c[2] / 255, 0.1]) @ w)
            r = (x - g) @ P
            rewards.append(1 - 0.5 * r.dot(r))
        expected[f"{goal}|{alpha}"] = rewards
print(json.dumps({"colours": COLOURS, "expected": expected}))

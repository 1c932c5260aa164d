"""Exports a small pretrained-encoder stand-in as TorchScript with the venv's
torch: a fixed random convolution, ReLU and global average pooling, taking
[B, 3, H, W] float images in [0, 1] to [B, 8] features.
Usage: make_frozen_encoder.py OUT.pt [SEED]"""
import sys

import torch


class Trunk(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
        self.conv = torch.nn.Conv2d(3, 8, 3, stride=2)

    def forward(self, x):
        return torch.relu(self.conv(x)).mean(dim=(2, 3))


torch.jit.script(Trunk()).save(sys.argv[1])

"""Exports a ResNet-10 trunk as TorchScript for `learner.pixels: (encoder:
Frozen(..))`: four stages of one basic residual block (64, 128, 256, 512
channels, the size SERL and HIL-SERL use), global average pooling, 512
features. It takes [B, 3 * cameras, H, W] float images in [0, 1] (the
cameras stacked along the channels, as rrl feeds them).

Without --weights the weights are random (seeded): the right shape and cost
for benchmarks and tests, not a useful encoder. With --weights FILE (a
state_dict saved by torch.save, e.g. converted from a pretrained ResNet-10)
they are loaded first; the first convolution's RGB filters are repeated for
every camera.

Usage: make_resnet10_trunk.py OUT.pt [--cameras N] [--weights FILE]"""
import argparse

import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, inputs, outputs, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False)
        self.norm1 = nn.GroupNorm(4, outputs)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False)
        self.norm2 = nn.GroupNorm(4, outputs)
        self.skip = nn.Sequential()
        if stride != 1 or inputs != outputs:
            self.skip = nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.GroupNorm(4, outputs))

    def forward(self, x):
        y = torch.relu(self.norm1(self.conv1(x)))
        return torch.relu(self.norm2(self.conv2(y)) + self.skip(x))


class ResNet10(nn.Module):
    def __init__(self, cameras):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3 * cameras, 64, 7, 2, 3, bias=False), nn.GroupNorm(4, 64), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        self.stages = nn.Sequential(Block(64, 64, 1), Block(64, 128, 2), Block(128, 256, 2), Block(256, 512, 2))
        # ImageNet statistics, per stacked channel.
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406] * cameras).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225] * cameras).view(1, -1, 1, 1))

    def forward(self, x):
        x = (x - self.mean) / self.std
        return self.stages(self.stem(x)).mean(dim=(2, 3))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--cameras", type=int, default=2)
    parser.add_argument("--weights")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = ResNet10(args.cameras)
    if args.weights:
        state = torch.load(args.weights, map_location="cpu")
        first = state.get("stem.0.weight")
        if first is not None and first.shape[1] == 3:
            state["stem.0.weight"] = first.repeat(1, args.cameras, 1, 1) / args.cameras
        model.load_state_dict(state, strict=False)
    model.eval()
    torch.jit.script(model).save(args.out)


if __name__ == "__main__":
    main()

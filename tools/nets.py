"""The two networks: a small heatmap keypoint net and a push-up recogniser on keypoint windows.

Both take NCHW input in PyTorch (the keypoint net pixels in 0..1, the recogniser a normalised
keypoint window [N, 3, T, K]); the exporter wraps them for channels-last TFLite input.
Only ops that map to int8 TFLite kernels: conv, depthwise conv, ReLU6, add, bilinear resize,
fully connected.

An earlier MobileNetV2-style frame recogniser (git history: tools/nets.py RecognizerNet) reached
ROC AUC 0.72 on validation footage against 0.98 for the keypoint-window one, and is gone.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv_bn(i, o, k=3, s=1, groups=1, act=True):
    layers = [nn.Conv2d(i, o, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(o)]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, i, o, stride=1, expand=4):
        super().__init__()
        hidden = i * expand
        layers = []
        if expand != 1:
            layers.append(conv_bn(i, hidden, 1))
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden), conv_bn(hidden, o, 1, act=False)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and i == o

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y


def stage(i, o, n, stride, expand):
    blocks = [InvertedResidual(i, o, stride, expand)]
    blocks += [InvertedResidual(o, o, 1, expand) for _ in range(n - 1)]
    return nn.Sequential(*blocks)


class KeypointNet(nn.Module):
    """Encoder to stride 16, U-Net-like decoder back to stride 4, one heatmap per keypoint."""

    def __init__(self, keypoints: int = 9, width: float = 1.0):
        super().__init__()
        c = lambda n: max(8, int(round(n * width / 8)) * 8)
        self.stem = nn.Sequential(conv_bn(3, c(16), 3, 2), InvertedResidual(c(16), c(16), 1, 1))  # /2
        self.s4 = stage(c(16), c(24), 2, 2, 4)  # /4
        self.s8 = stage(c(24), c(40), 3, 2, 4)  # /8
        self.s16 = nn.Sequential(stage(c(40), c(64), 3, 2, 4), stage(c(64), c(96), 2, 1, 4))  # /16
        d = c(48)
        self.lat16 = conv_bn(c(96), d, 1)
        self.lat8 = conv_bn(c(40), d, 1)
        self.lat4 = conv_bn(c(24), d, 1)
        self.up8 = nn.Sequential(conv_bn(d, d, 3, groups=d), conv_bn(d, d, 1))
        self.up4 = nn.Sequential(conv_bn(d, d, 3, groups=d), conv_bn(d, d, 1), conv_bn(d, d, 3, groups=d), conv_bn(d, d, 1))
        self.head = nn.Conv2d(d, keypoints, 1)

    def forward(self, x):
        x = self.stem(x)
        f4 = self.s4(x)
        f8 = self.s8(f4)
        f16 = self.s16(f8)
        y = self.lat16(f16)
        y = F.interpolate(y, scale_factor=2.0, mode="bilinear", align_corners=False) + self.lat8(f8)
        y = self.up8(y)
        y = F.interpolate(y, scale_factor=2.0, mode="bilinear", align_corners=False) + self.lat4(f4)
        y = self.up4(y)
        return self.head(y)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, shape) -> int:
    """Multiply-accumulates of conv and linear layers for one input of NCHW ``shape``."""
    total = 0

    def hook(mod, inp, out):
        nonlocal total
        if isinstance(mod, nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1] * (mod.in_channels // mod.groups)
            total += out.numel() * k
        elif isinstance(mod, nn.Linear):
            total += mod.in_features * mod.out_features

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(shape))
    model.train(was)
    for h in hs:
        h.remove()
    return int(total)


class MotionRecognizerNet(nn.Module):
    """Push-up recogniser on a keypoint window (appliance.recognition): NCHW [N, 3, T, K].

    A 1xK convolution embeds each sample's pose, temporal convolutions (two at stride 2) read
    the movement, and the last layer sees the whole window in order (flatten, not a pool), so
    it can weigh the newest seconds most.
    """

    def __init__(self, keypoints: int = 9, steps: int = 30, width: int = 48):
        super().__init__()

        def block(i, o, k, s=1):
            return nn.Sequential(nn.Conv2d(i, o, (k, 1), (s, 1), (k // 2, 0), bias=False), nn.BatchNorm2d(o), nn.ReLU6(inplace=True))

        self.pose = nn.Sequential(nn.Conv2d(3, width, (1, keypoints), bias=False), nn.BatchNorm2d(width), nn.ReLU6(inplace=True))
        self.motion = nn.Sequential(block(width, width, 5), block(width, 2 * width, 5, 2), block(2 * width, 2 * width, 5),
                                    block(2 * width, 2 * width, 3, 2))
        t = steps
        for _ in range(2):
            t = (t - 1) // 2 + 1
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(2 * width * t, 1)

    def forward(self, x):
        x = self.motion(self.pose(x))
        return self.fc(self.drop(torch.flatten(x, 1)))


class AveragedRecognizer(nn.Module):
    """The mean logit of recognisers trained apart (other seeds, other trace sets): their
    mistakes differ, so the average ranks windows better than any one of them. One graph, so it
    exports to one int8 model; each member costs what the single recogniser did."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x):
        return torch.stack([m(x) for m in self.members], 0).mean(0)

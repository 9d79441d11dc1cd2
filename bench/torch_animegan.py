"""The PyTorch port's generator, written for the ONNX parity bench.

Bench-only: imports torch, which the package never needs. The structure
mirrors the port's documented network (`uegan_tf/importers.py`,
`pytorch_key_map`; `docs/environment.md#onnx`) and its parameter names, so
one state dict loads into this module and, through our importer, into the
Keras generator:

- `ConvNormLReLU` = `Sequential(reflect pad, Conv2d(bias=False except the
  depthwise one), GroupNorm(1, C), LeakyReLU(0.2))`: state-dict indices
  1 = conv, 2 = norm;
- `InvertedResBlock.layers` = `[ConvNormLReLU 1x1, ConvNormLReLU 3x3
  depthwise (bias), Conv2d 1x1, GroupNorm]`, plus the input when the
  channel counts match;
- blocks a-e and `out_layer` = `Sequential(Conv2d 1x1, Tanh)`;
- `forward(x, align_corners=True)` resizes with `F.interpolate` bilinear to
  the encoder's sizes (align_corners=True) or by 2 (align_corners=False).

Input and output NCHW float32 in [-1, 1].
"""

import torch
import torch.nn.functional as F
from torch import nn


class ConvNormLReLU(nn.Sequential):
    """pad -> conv -> GroupNorm(1) -> LeakyReLU(0.2); `[B, C, H, W]`."""

    def __init__(
        self,
        in_ch,
        out_ch,
        kernel_size=3,
        stride=1,
        padding=1,
        groups=1,
        bias=False,
    ):
        super().__init__(
            # An int pads all sides; (left, right, top, bottom) for the
            # stride-2 convs: (0, 1, 0, 1) as our `same_padding`.
            nn.ReflectionPad2d(padding),
            nn.Conv2d(
                in_ch,
                out_ch,
                kernel_size,
                stride,
                padding=0,
                groups=groups,
                bias=bias,
            ),
            nn.GroupNorm(1, out_ch, affine=True),
            nn.LeakyReLU(0.2, inplace=True),
        )


class InvertedResBlock(nn.Module):
    """1x1 expand, 3x3 depthwise, 1x1 linear project (+ input)."""

    def __init__(self, in_ch, out_ch, expansion=2):
        super().__init__()
        self.residual = in_ch == out_ch
        mid = int(round(in_ch * expansion))
        self.layers = nn.Sequential(
            ConvNormLReLU(in_ch, mid, kernel_size=1, padding=0),
            ConvNormLReLU(mid, mid, groups=mid, bias=True),
            nn.Conv2d(mid, out_ch, 1, bias=False),
            nn.GroupNorm(1, out_ch, affine=True),
        )

    def forward(self, x):
        y = self.layers(x)
        return x + y if self.residual else y


class Generator(nn.Module):
    """The plain AnimeGANv2 generator (2,143,552 parameters)."""

    def __init__(self):
        super().__init__()
        down = (0, 1, 0, 1)  # bottom/right reflect pad of the stride-2 convs
        self.block_a = nn.Sequential(
            ConvNormLReLU(3, 32, kernel_size=7, padding=3),
            ConvNormLReLU(32, 64, stride=2, padding=down),
            ConvNormLReLU(64, 64),
        )
        self.block_b = nn.Sequential(
            ConvNormLReLU(64, 128, stride=2, padding=down),
            ConvNormLReLU(128, 128),
        )
        self.block_c = nn.Sequential(
            ConvNormLReLU(128, 128),
            InvertedResBlock(128, 256),
            InvertedResBlock(256, 256),
            InvertedResBlock(256, 256),
            InvertedResBlock(256, 256),
            ConvNormLReLU(256, 128),
        )
        self.block_d = nn.Sequential(
            ConvNormLReLU(128, 128), ConvNormLReLU(128, 128)
        )
        self.block_e = nn.Sequential(
            ConvNormLReLU(128, 64),
            ConvNormLReLU(64, 64),
            ConvNormLReLU(64, 32, kernel_size=7, padding=3),
        )
        self.out_layer = nn.Sequential(
            nn.Conv2d(32, 3, 1, bias=False), nn.Tanh()
        )

    def forward(self, x, align_corners=True):
        y = self.block_a(x)  # [B, 64, H/2, W/2]
        half = y.shape[-2:]
        y = self.block_c(self.block_b(y))  # [B, 128, H/4, W/4]
        if align_corners:
            y = F.interpolate(y, half, mode="bilinear", align_corners=True)
        else:
            y = F.interpolate(
                y, scale_factor=2, mode="bilinear", align_corners=False
            )
        y = self.block_d(y)  # [B, 128, H/2, W/2]
        if align_corners:
            y = F.interpolate(
                y, x.shape[-2:], mode="bilinear", align_corners=True
            )
        else:
            y = F.interpolate(
                y, scale_factor=2, mode="bilinear", align_corners=False
            )
        return self.out_layer(self.block_e(y))  # [B, 3, H, W]


def random_state_dict(seed=0):
    """A seeded random state dict of `Generator`.

    PyTorch's default conv initialisation, and norm affines drawn around
    (1, 0) rather than left at exactly (1, 0), so that a wrong gamma/beta
    mapping would show in the comparison.
    """
    torch.manual_seed(seed)
    model = Generator()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.GroupNorm):
                module.weight.normal_(1.0, 0.1)
                module.bias.normal_(0.0, 0.1)
    return model.state_dict()

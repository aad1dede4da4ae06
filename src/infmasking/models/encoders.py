"""Per-modality encoders e_m. Each maps a batch of one modality to a feature map
[B, C, H, W], a sequence [B, L, c] (sequence encoders take an optional padding mask
[B, L], True = padded) or a vector [B, c]; ``out_kind`` and ``out_channels`` say which."""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

OutKind = Literal["map", "sequence", "vector"]


@runtime_checkable
class Encoder(Protocol):
    """The contract of a modality encoder e_m (see docs/CONTRIBUTING.md).

    ``out_kind``: "map" -> [B, C, H, W], "sequence" -> [B, L, c], "vector" -> [B, c];
    ``out_channels``: C or c. ``forward(x)``, and for sequence encoders ``forward(x, padding)``
    with padding [B, L] bool (True = padded) or None."""

    out_kind: str
    out_channels: int

    def __call__(self, x: Tensor, *args, **kwargs) -> Tensor: ...


from infmasking.models.tokens import sincos_1d


class ImageTrunk(nn.Module):
    """Base of the convolutional image encoders: ``self.net`` runs in the channels-last
    (NHWC) memory layout, weights and activations, which oneDNN convolves much faster on
    CPU (forward + backward, one thread: ConvNet 1.77×, AlexNet 1.23×, ResNet-18 1.09×,
    ``benchmarks/costs/encoder_layout.py``) and tensor cores prefer on GPU. Only strides change:
    values agree with the NCHW layout to float rounding, and the output is an ordinary
    [B, C, H, W] tensor (channels-last strided).

    Subclasses build ``self.net`` then call ``self._channels_last()``.
    """

    out_kind = "map"
    net: nn.Module

    def _channels_last(self) -> None:
        self.to(memory_format=torch.channels_last)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.contiguous(memory_format=torch.channels_last))


class ConvNet(ImageTrunk):
    """Small CNN for 64 px images: blocks of conv3×3-BN-ReLU-maxpool2. [B, 3, 64, 64] ->
    [B, widths[-1], 4, 4] with the default 4 blocks (16-32-64-128), i.e. 16 tokens."""

    def __init__(self, in_channels: int = 3, widths: tuple[int, ...] = (16, 32, 64, 128)):
        super().__init__()
        layers, c = [], in_channels
        for w in widths:
            layers += [
                nn.Conv2d(c, w, 3, padding=1, bias=False),
                nn.BatchNorm2d(w),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            c = w
        self.net = nn.Sequential(*layers)
        self.out_channels = c
        self._channels_last()


class AlexNetFeatures(ImageTrunk):
    """AlexNet convolutional trunk (the published Trifeatures encoder): [B, 3, 224, 224] ->
    [B, 256, 6, 6], i.e. 36 tokens."""

    out_channels = 256

    def __init__(self, in_channels: int = 3):
        super().__init__()
        r = lambda: nn.ReLU(inplace=True)
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, 64, 11, stride=4, padding=2),
            r(),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2),
            r(),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1),
            r(),
            nn.Conv2d(384, 256, 3, padding=1),
            r(),
            nn.Conv2d(256, 256, 3, padding=1),
            r(),
            nn.MaxPool2d(3, 2),
            nn.AdaptiveAvgPool2d(6),
        )
        self._channels_last()


class _BasicBlock(nn.Module):
    """Two conv3×3-BN layers with a residual connection (projected by conv1×1-BN when the
    stride or width changes)."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False),
            nn.BatchNorm2d(c_out),
        )
        self.skip = (
            nn.Identity()
            if stride == 1 and c_in == c_out
            else nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.body(x) + self.skip(x))


class ResNet18(ImageTrunk):
    """ResNet-18 trunk without pooling or classifier (the published Vision&Touch image
    encoder): stem conv7×7/2-BN-ReLU-maxpool/2, then 4 stages of 2 basic blocks (strides
    1, 2, 2, 2). [B, 3, 128, 128] -> [B, 512, 4, 4], i.e. 16 tokens. ``widths`` shrinks the
    stages (tests, CPU runs)."""

    def __init__(
        self, in_channels: int = 3, widths: tuple[int, ...] = (64, 128, 256, 512), blocks: int = 2
    ):
        super().__init__()
        c = widths[0]
        layers = [
            nn.Conv2d(in_channels, c, 7, 2, 3, bias=False),
            nn.BatchNorm2d(c),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        ]
        for i, w in enumerate(widths):
            for j in range(blocks):
                layers.append(_BasicBlock(c, w, 2 if (i > 0 and j == 0) else 1))
                c = w
        self.net = nn.Sequential(*layers)
        self.out_channels = c
        self._channels_last()


class SequenceTransformer(nn.Module):
    """Transformer encoder for feature sequences (affect): [B, L, c] (+ padding [B, L]) ->
    [B, L, width]. Linear c→width, sin-cos positions, ``n_layers`` post-norm layers."""

    out_kind = "sequence"

    def __init__(
        self,
        in_channels: int,
        width: int = 40,
        n_layers: int = 1,
        n_heads: int = 5,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.proj = nn.Linear(in_channels, width)
        layer = nn.TransformerEncoderLayer(width, n_heads, 4 * width, dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.out_channels = width

    def forward(self, x: Tensor, padding: Tensor | None = None) -> Tensor:
        h = self.proj(x) + sincos_1d(x.shape[1], self.out_channels, x.device).to(x.dtype)
        return self.encoder(h, src_key_padding_mask=padding)


class GRUEncoder(nn.Module):
    """GRU over time (MIMIC time series): [B, L, c] -> [B, L, hidden] (all steps as tokens)."""

    out_kind = "sequence"

    def __init__(self, in_channels: int, hidden: int = 512):
        super().__init__()
        self.gru = nn.GRU(in_channels, hidden, batch_first=True)
        self.out_channels = hidden

    def forward(self, x: Tensor, padding: Tensor | None = None) -> Tensor:
        return self.gru(x)[0]


class Conv1dEncoder(nn.Module):
    """Temporal convolutions (V&T force): [B, L, c] -> [B, L', width], L' = L for stride 1;
    each layer of stride s divides the length by s (rounded up): with stride 2 and 5 layers a
    32-step force window becomes one token, as the published V&T force encoder. Strided
    layers are for unpadded sequences (a padding mask would no longer match the steps)."""

    out_kind = "sequence"

    def __init__(self, in_channels: int, width: int = 64, n_layers: int = 2, stride: int = 1):
        super().__init__()
        layers, c = [], in_channels
        for _ in range(n_layers):
            layers += [nn.Conv1d(c, width, 3, stride=stride, padding=1), nn.ReLU(inplace=True)]
            c = width
        self.net = nn.Sequential(*layers)
        self.out_channels = width

    def forward(self, x: Tensor, padding: Tensor | None = None) -> Tensor:
        return self.net(x.transpose(1, 2)).transpose(1, 2)


class MLPEncoder(nn.Module):
    """MLP for vectors (tabular, precomputed features): [B, c] -> [B, width]."""

    out_kind = "vector"

    def __init__(self, in_channels: int, width: int = 512, n_layers: int = 2):
        super().__init__()
        layers, c = [], in_channels
        for _ in range(n_layers):
            layers += [nn.Linear(c, width), nn.ReLU(inplace=True)]
            c = width
        self.net = nn.Sequential(*layers)
        self.out_channels = width

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class IdentityEncoder(nn.Module):
    """No encoder: the adapter reads the input directly (vectors or sequences)."""

    def __init__(self, in_channels: int, kind: str):
        super().__init__()
        self.out_kind, self.out_channels = kind, in_channels

    def forward(self, x: Tensor, padding: Tensor | None = None) -> Tensor:
        return x


ENCODERS = {
    "convnet": ConvNet,
    "alexnet": AlexNetFeatures,
    "resnet18": ResNet18,
    "transformer": SequenceTransformer,
    "gru": GRUEncoder,
    "conv1d": Conv1dEncoder,
    "mlp": MLPEncoder,
    "identity": IdentityEncoder,
}

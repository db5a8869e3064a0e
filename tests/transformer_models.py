"""Small transformers built for the tests, with random weights and nothing downloaded: token
layouts (B, T, C) with class and register tokens, sequence-first (T, B, C) as OpenAI CLIP,
channels-last maps (B, H, W, C) as Swin and ConvNeXt in timm, and a patch embedding with a
known filter."""

import torch
from torch import nn


def tiny_timm_vit(img_size: int = 32, depth: int = 2, reg_tokens: int = 2) -> nn.Module:
    """timm's vit_tiny_patch16_224 made small: 16 px patches, a class and register tokens."""
    timm = __import__("timm")
    return timm.create_model("vit_tiny_patch16_224", pretrained=False, depth=depth,
                             img_size=img_size, num_classes=10, reg_tokens=reg_tokens).eval()


class KnownFilterViT(nn.Module):
    """Patch tokens of 8 px patches, with feature 0 of every patch token the filter
    ``FILTER`` (3, 8, 8) applied to its patch; a class token and two register tokens whose
    feature 0 is 100 (far above any patch token's), then a block of linear maps.

    ``tokens`` (an identity) outputs (B, 3 + (H/8)·(W/8), C): pooling its feature 0 over the
    patch tokens is the mean filter response, whose optimum is every patch equal to the
    filter's sign pattern.
    """

    PATCH, FEATURES, PREFIX = 8, 12, 3

    def __init__(self):
        super().__init__()
        generator = torch.Generator().manual_seed(3)
        self.filter = torch.randn(3, self.PATCH, self.PATCH, generator=generator)
        self.embed = nn.Conv2d(3, self.FEATURES, self.PATCH, stride=self.PATCH)
        with torch.no_grad():
            self.embed.weight[0] = self.filter
            self.embed.bias[0] = 0.0
        prefix = torch.randn(1, self.PREFIX, self.FEATURES, generator=generator)
        prefix[..., 0] = 100.0
        self.register_buffer("prefix", prefix)
        self.tokens = nn.Identity()
        self.norm = nn.LayerNorm(self.FEATURES)
        self.fc1 = nn.Linear(self.FEATURES, 4 * self.FEATURES)
        self.head = nn.Linear(4 * self.FEATURES, 5)

    def forward(self, x):
        patches = self.embed(x).flatten(2).transpose(1, 2)  # (B, N, C)
        tokens = self.tokens(torch.cat([self.prefix.expand(x.shape[0], -1, -1), patches], 1))
        return self.head(self.fc1(self.norm(tokens))[:, 0])


class ChannelsLastBlock(nn.Module):
    """A ConvNeXt-like block in timm's channels-last form: a stem convolution (B, C, H, W),
    then (B, H, W, C) through ``mix`` (a linear map of each pixel's colour, whose optimum is
    known), a layer norm and an MLP."""

    def __init__(self, channels: int = 6):
        super().__init__()
        self.mix = nn.Linear(3, channels)
        self.norm = nn.LayerNorm(channels)
        self.fc1 = nn.Linear(channels, 4 * channels)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(4 * channels, channels)
        self.head = nn.Linear(channels, 4)

    def forward(self, x):
        x = self.mix(x.permute(0, 2, 3, 1))  # (B, H, W, C)
        x = x + self.fc2(self.act(self.fc1(self.norm(x))))
        return self.head(x.mean((1, 2)))


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    """OpenAI CLIP's block: sequence-first (T, B, C) in and out."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential()
        self.mlp.add_module("c_fc", nn.Linear(width, 4 * width))
        self.mlp.add_module("gelu", QuickGELU())
        self.mlp.add_module("c_proj", nn.Linear(4 * width, width))

    def forward(self, x):
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class SequenceFirstImageTower(nn.Module):
    """A CLIP-style image tower: 8 px patches and a class token, a sequence-first
    transformer, the class token projected to an embedding (B, ``dim``)."""

    def __init__(self, width: int = 24, layers: int = 2, dim: int = 16, side: int = 32):
        super().__init__()
        grid = side // 8
        self.conv1 = nn.Conv2d(3, width, 8, stride=8, bias=False)
        self.class_embedding = nn.Parameter(torch.randn(width) * 0.5)
        self.positional_embedding = nn.Parameter(torch.randn(grid * grid + 1, width) * 0.1)
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = nn.Sequential(*[ResidualAttentionBlock(width, 2) for _ in range(layers)])
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Linear(width, dim, bias=False)

    def forward(self, x):
        x = self.conv1(x).flatten(2).transpose(1, 2)  # (B, N, C)
        cls = self.class_embedding.expand(x.shape[0], 1, -1)
        x = self.ln_pre(torch.cat([cls, x], 1) + self.positional_embedding)
        x = self.transformer(x.permute(1, 0, 2))  # (T, B, C)
        return self.proj(self.ln_post(x[0]))


class SequenceFirstTextTower(nn.Module):
    """A CLIP-style text tower: token ids (B, T) -> embeddings, a sequence-first transformer,
    the last token projected to an embedding (B, ``dim``)."""

    def __init__(self, vocab: int = 20, width: int = 16, dim: int = 8):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab, width)
        self.transformer = nn.Sequential(ResidualAttentionBlock(width, 2))
        self.ln_final = nn.LayerNorm(width)
        self.text_projection = nn.Linear(width, dim, bias=False)

    def forward(self, ids):
        x = self.transformer(self.token_embedding(ids).permute(1, 0, 2))  # (T, B, C)
        return self.text_projection(self.ln_final(x[-1]))


class Ambiguous(nn.Module):
    """A 4 px patch embedding flattened by a function, not a module: ``tokens`` outputs
    (B, 16, 16) for a 16 px image, 16 tokens on a 4×4 grid of 16 features or 16 features
    over 16 positions, and nothing says which."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Conv2d(3, 16, 4, stride=4)
        self.tokens = nn.Identity()
        self.head = nn.Linear(256, 3)

    def forward(self, x):
        return self.head(self.tokens(self.embed(x).flatten(2)).flatten(1))

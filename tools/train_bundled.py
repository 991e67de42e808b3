"""Train the bundled bench model: a small DeiT-style ViT on scikit-learn's digits.

Usage (from the repository root; needs ``pip install scikit-learn torch==2.13.0``)::

    python tools/train_bundled.py [--epochs 60] [--out refq/data]

Deterministic: seeded NumPy and torch, ``torch.use_deterministic_algorithms(True)``, one
thread. Writes

* ``digits.npz`` — sklearn's 8x8 digit values (uint8 0..16), labels, and the disjoint
  train / calibration / test index arrays (seeded permutation: 400 test, 100 calibration,
  the remaining 1297 train);
* ``deit_digits.safetensors`` — float32 weights in refq (= timm) naming;
* ``deit_digits.json`` — the model config, the FP test accuracy measured by refq's NumPy
  float64 forward (and torch's, for reference), and the training recipe.

Images are derived by :func:`refq.nn.bundled.digits_pixels` (value * 255 // 16, exact
integer 4x bilinear upscale to 32x32), the same function refq uses at run time. The model
is a pre-norm DeiT block stack (qkv linear, softmax attention, proj, fc1-GELU-fc2,
residuals) with a cls token: patch 4 on 32x32 (64 patches + cls), width 64, depth 4,
4 heads, MLP ratio 4, LayerNorm eps 1e-6, one input channel, mean = std = 0.5.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from refq.nn.bundled import digits_pixels  # noqa: E402
from refq.nn.configs import ViTConfig  # noqa: E402

SEED = 0
CONFIG = ViTConfig(
    name="deit_digits", img_size=32, patch_size=4, in_chans=1, num_classes=10, embed_dim=64,
    depth=4, num_heads=4, mlp_ratio=4.0, qkv_bias=True, distilled=False, ln_eps=1e-6,
    mean=(0.5,), std=(0.5,), crop_pct=1.0, family="deit",
)


class Block(nn.Module):
    """timm's ViT block (pre-norm), parameter names as in timm."""

    def __init__(self, dim: int, heads: int, hidden: int, eps: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = nn.Module()
        self.attn.qkv = nn.Linear(dim, 3 * dim)
        self.attn.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = nn.Module()
        self.mlp.fc1 = nn.Linear(dim, hidden)
        self.mlp.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.attn.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, c // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        a = ((q @ k.transpose(-2, -1)) * (c // self.heads) ** -0.5).softmax(dim=-1)
        x = x + self.attn.proj((a @ v).transpose(1, 2).reshape(b, n, c))
        return x + self.mlp.fc2(F.gelu(self.mlp.fc1(self.norm2(x))))


class DeiT(nn.Module):
    """timm's VisionTransformer (cls token, no distillation token), timm names."""

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        d = cfg.embed_dim
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(cfg.in_chans, d, cfg.patch_size, cfg.patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.num_patches + 1, d))
        self.blocks = nn.ModuleList(
            Block(d, cfg.num_heads, cfg.mlp_hidden, cfg.ln_eps) for _ in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(d, eps=cfg.ln_eps)
        self.head = nn.Linear(d, cfg.num_classes)
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif "norm" in name:
                nn.init.ones_(p)
            else:
                nn.init.trunc_normal_(p, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), t], dim=1) + self.pos_embed
        for blk in self.blocks:
            t = blk(t)
        return self.head(self.norm(t)[:, 0])


def augment(x: torch.Tensor, gen: torch.Generator, max_shift: int = 2) -> torch.Tensor:
    """Random translation by up to ``max_shift`` pixels (padding: background, -1 once
    normalised)."""
    b, _, h, w = x.shape
    pad = F.pad(x, (max_shift,) * 4, value=-1.0)
    dy = torch.randint(0, 2 * max_shift + 1, (b,), generator=gen)
    dx = torch.randint(0, 2 * max_shift + 1, (b,), generator=gen)
    return torch.stack([pad[i, :, dy[i]: dy[i] + h, dx[i]: dx[i] + w] for i in range(b)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--out", type=Path, default=ROOT / "refq" / "data")
    args = ap.parse_args()

    from safetensors.numpy import save_file
    from sklearn.datasets import load_digits

    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    t0 = time.time()

    digits = load_digits()
    values = digits.images.astype(np.uint8)
    labels = digits.target.astype(np.uint8)
    perm = np.random.default_rng(SEED).permutation(len(labels))
    test_idx, calib_idx, train_idx = (np.sort(perm[:400]), np.sort(perm[400:500]),
                                      np.sort(perm[500:]))
    args.out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out / "digits.npz", values=values, labels=labels,
                        train_idx=train_idx.astype(np.int32),
                        calib_idx=calib_idx.astype(np.int32),
                        test_idx=test_idx.astype(np.int32))

    pixels = digits_pixels(values)[:, None]  # (N, 1, 32, 32) uint8
    x_all = torch.from_numpy((pixels.astype(np.float32) / 255.0 - 0.5) / 0.5)
    y_all = torch.from_numpy(labels.astype(np.int64))
    x_tr, y_tr = x_all[train_idx], y_all[train_idx]

    model = DeiT(CONFIG)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1 and "token" not in n
             and "pos_embed" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim > 1 and "token" not in n
                                                               and "pos_embed" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)
    steps_per_epoch = math.ceil(len(y_tr) / args.batch)
    total, warm = args.epochs * steps_per_epoch, 5 * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm
        else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, total - warm))))
    gen = torch.Generator().manual_seed(SEED)
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(y_tr), generator=gen)
        loss_sum = 0.0
        for i in range(0, len(y_tr), args.batch):
            idx = order[i: i + args.batch]
            loss = F.cross_entropy(model(augment(x_tr[idx], gen)), y_tr[idx],
                                   label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += float(loss.detach()) * len(idx)
        if epoch % 10 == 9 or epoch == args.epochs - 1:
            model.eval()
            with torch.no_grad():
                acc = float((model(x_all[test_idx]).argmax(-1) == y_all[test_idx]).float().mean())
            print(f"epoch {epoch + 1}: loss {loss_sum / len(y_tr):.4f} test acc {acc:.4f} "
                  f"({time.time() - t0:.0f} s)", flush=True)
    train_s = time.time() - t0

    model.eval()
    with torch.no_grad():
        torch_correct = int((model(x_all[test_idx]).argmax(-1) == y_all[test_idx]).sum())
    weights = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    save_file(weights, str(args.out / "deit_digits.safetensors"))

    # the recorded accuracy is refq's NumPy float64 forward on the saved weights
    from refq.nn.factory import create_model

    ref = create_model(CONFIG, args.out / "deit_digits.safetensors", np.float64,
                       weights_format="timm")
    pred = ref.predict((pixels[test_idx].astype(np.float64) / 255.0 - 0.5) / 0.5)
    correct = int((pred == labels[test_idx]).sum())
    info = {
        "config": CONFIG.to_dict(),
        "fp_test_accuracy": correct / len(test_idx),
        "fp_test_correct": correct,
        "n_test": len(test_idx),
        "n_calib": len(calib_idx),
        "n_train": len(train_idx),
        "torch_test_correct": torch_correct,
        "images": "digits_pixels: value*255//16 uint8, exact integer 4x bilinear to 32x32",
        "training": {
            "script": "tools/train_bundled.py", "seed": SEED, "epochs": args.epochs,
            "batch": args.batch, "optimizer": "AdamW wd 0.05 (not on biases, norms, tokens)",
            "lr": args.lr, "schedule": "5-epoch linear warm-up, cosine to 0",
            "loss": "cross-entropy, label smoothing 0.1",
            "augmentation": "random translation up to 2 pixels",
            "torch": torch.__version__, "threads": 1, "seconds": round(train_s, 1),
        },
    }
    (args.out / "deit_digits.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps({k: info[k] for k in ("fp_test_accuracy", "fp_test_correct",
                                           "torch_test_correct")}), f"{train_s:.0f} s")


if __name__ == "__main__":
    main()

"""Train the bundled bench models: a small DeiT-style ViT and a small Swin on scikit-learn's
digits.

Usage (from the repository root; needs ``pip install scikit-learn torch==2.13.0``)::

    python tools/train_bundled.py [--model deit_digits] [--epochs 60] [--out refq/data]
    python tools/train_bundled.py --model swin_digits [--epochs 60] [--out refq/data]

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

``--model swin_digits`` trains the bundled Swin the same way (same seed, split, recipe and
augmentation) and writes ``swin_digits.safetensors`` / ``swin_digits.json``; it reads the
split from the existing ``digits.npz`` (checked equal to the seeded permutation) instead of
rewriting it. The model (:data:`SWIN_CONFIG`) has what makes Swin Swin: patch 4 on 32x32
(an 8x8 token grid), window 4, two stages of depth 2 with 2 and 4 heads, width 32 then 64;
stage 0 has four 4x4 windows and its second block shifts them cyclically by 2 (the
shifted-window mask), a patch merging (2x2 concatenation, LayerNorm, reduction linear)
halves the grid to 4x4, where the window equals the resolution (one window, no shift).
The torch module is written here from refq's forward (:mod:`refq.nn.swin`: the relative
position index and the shift mask are refq's); the tool checks that the trained torch
model and refq's float64 forward give the same logits (max |diff| < 1e-4) before writing.
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
from refq.nn.configs import SwinConfig, ViTConfig  # noqa: E402
from refq.nn.swin import relative_position_index, shift_mask  # noqa: E402

SEED = 0
CONFIG = ViTConfig(
    name="deit_digits", img_size=32, patch_size=4, in_chans=1, num_classes=10, embed_dim=64,
    depth=4, num_heads=4, mlp_ratio=4.0, qkv_bias=True, distilled=False, ln_eps=1e-6,
    mean=(0.5,), std=(0.5,), crop_pct=1.0, family="deit",
)
SWIN_CONFIG = SwinConfig(
    name="swin_digits", img_size=32, patch_size=4, in_chans=1, num_classes=10, embed_dim=32,
    depths=(2, 2), num_heads=(2, 4), window_size=4, mlp_ratio=4.0, qkv_bias=True,
    ln_eps=1e-5, mean=(0.5,), std=(0.5,), crop_pct=1.0, family="swin",
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


class SwinBlock(Block):
    """A Swin block: timm's names (as :class:`Block`) plus the relative position bias table;
    window attention, shifted by ``shift`` (cyclic roll and the -100 mask) when non-zero."""

    def __init__(self, dim: int, heads: int, hidden: int, eps: float, res: int, window: int,
                 shift: int) -> None:
        super().__init__(dim, heads, hidden, eps)
        self.res, self.window, self.shift = res, window, shift
        self.attn.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window - 1) ** 2, heads))
        idx = torch.from_numpy(relative_position_index(window).reshape(-1))
        self.register_buffer("rp_index", idx, persistent=False)
        mask = shift_mask(res, window, shift) if shift else None
        self.register_buffer("mask", None if mask is None else
                             torch.from_numpy(mask.astype(np.float32)), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        r, w, s, h = self.res, self.window, self.shift, self.heads
        g = self.norm1(x).reshape(b, r, r, c)
        if s:
            g = torch.roll(g, (-s, -s), dims=(1, 2))
        win = g.reshape(b, r // w, w, r // w, w, c).permute(0, 1, 3, 2, 4, 5).reshape(
            -1, w * w, c)
        bw, m, _ = win.shape
        qkv = self.attn.qkv(win).reshape(bw, m, 3, h, c // h)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        a = (q @ k.transpose(-2, -1)) * (c // h) ** -0.5
        bias = self.attn.relative_position_bias_table[self.rp_index].reshape(m, m, h)
        a = a + bias.permute(2, 0, 1)
        if self.mask is not None:
            nw = self.mask.shape[0]
            a = (a.reshape(bw // nw, nw, h, m, m) + self.mask[:, None]).reshape(bw, h, m, m)
        o = self.attn.proj((a.softmax(dim=-1) @ v).transpose(1, 2).reshape(bw, m, c))
        g = o.reshape(b, r // w, r // w, w, w, c).permute(0, 1, 3, 2, 4, 5).reshape(b, r, r, c)
        if s:
            g = torch.roll(g, (s, s), dims=(1, 2))
        x = x + g.reshape(b, n, c)
        return x + self.mlp.fc2(F.gelu(self.mlp.fc1(self.norm2(x))))


class Swin(nn.Module):
    """A Swin Transformer in timm (>= 0.9) names, the forward of :mod:`refq.nn.swin`."""

    def __init__(self, cfg: SwinConfig) -> None:
        super().__init__()
        c0, eps = cfg.embed_dim, cfg.ln_eps
        self.cfg = cfg
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(cfg.in_chans, c0, cfg.patch_size, cfg.patch_size)
        self.patch_embed.norm = nn.LayerNorm(c0, eps=eps)
        self.layers = nn.ModuleList()
        for st, depth in enumerate(cfg.depths):
            c, r, w = cfg.stage_dim(st), cfg.stage_resolution(st), cfg.stage_window(st)
            stage = nn.Module()
            if st > 0:
                stage.downsample = nn.Module()
                stage.downsample.norm = nn.LayerNorm(2 * c, eps=eps)
                stage.downsample.reduction = nn.Linear(2 * c, c, bias=False)
            stage.blocks = nn.ModuleList(
                SwinBlock(c, cfg.num_heads[st], int(c * cfg.mlp_ratio), eps, r, w,
                          cfg.block_shift(st, j)) for j in range(depth))
            self.layers.append(stage)
        self.norm = nn.LayerNorm(cfg.num_features, eps=eps)
        self.head = nn.Module()
        self.head.fc = nn.Linear(cfg.num_features, cfg.num_classes)
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif "norm" in name:
                nn.init.ones_(p)
            else:
                nn.init.trunc_normal_(p, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.patch_embed.norm(self.patch_embed.proj(x).flatten(2).transpose(1, 2))
        for st, stage in enumerate(self.layers):
            if st > 0:
                b, _, c = t.shape
                r = self.cfg.stage_resolution(st)
                g = t.reshape(b, 2 * r, 2 * r, c)
                g = torch.cat([g[:, 0::2, 0::2], g[:, 1::2, 0::2], g[:, 0::2, 1::2],
                               g[:, 1::2, 1::2]], dim=-1).reshape(b, r * r, 4 * c)
                t = stage.downsample.reduction(stage.downsample.norm(g))
            for blk in stage.blocks:
                t = blk(t)
        return self.head.fc(self.norm(t).mean(dim=1))


def augment(x: torch.Tensor, gen: torch.Generator, max_shift: int = 2) -> torch.Tensor:
    """Random translation by up to ``max_shift`` pixels (padding: background, -1 once
    normalised)."""
    b, _, h, w = x.shape
    pad = F.pad(x, (max_shift,) * 4, value=-1.0)
    dy = torch.randint(0, 2 * max_shift + 1, (b,), generator=gen)
    dx = torch.randint(0, 2 * max_shift + 1, (b,), generator=gen)
    return torch.stack([pad[i, :, dy[i]: dy[i] + h, dx[i]: dx[i] + w] for i in range(b)])


def _decays(name: str, p: torch.Tensor) -> bool:
    """AdamW weight decay on matrices only: not on biases, norms, tokens, position
    embeddings or relative position bias tables."""
    return p.ndim > 1 and not any(k in name for k in ("token", "pos_embed", "relative_position"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=("deit_digits", "swin_digits"), default="deit_digits")
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
    swin = args.model == "swin_digits"
    cfg: ViTConfig | SwinConfig = SWIN_CONFIG if swin else CONFIG

    digits = load_digits()
    values = digits.images.astype(np.uint8)
    labels = digits.target.astype(np.uint8)
    perm = np.random.default_rng(SEED).permutation(len(labels))
    test_idx, calib_idx, train_idx = (np.sort(perm[:400]), np.sort(perm[400:500]),
                                      np.sort(perm[500:]))
    args.out.mkdir(parents=True, exist_ok=True)
    if swin:  # the split the DeiT run wrote: the same seeded permutation, not rewritten
        from refq.nn.bundled import load_digits as load_split

        have = load_split(args.out / "digits.npz")
        for mine, theirs in ((train_idx, have.train_idx), (calib_idx, have.calib_idx),
                             (test_idx, have.test_idx)):
            np.testing.assert_array_equal(mine, theirs)
    else:
        np.savez_compressed(args.out / "digits.npz", values=values, labels=labels,
                            train_idx=train_idx.astype(np.int32),
                            calib_idx=calib_idx.astype(np.int32),
                            test_idx=test_idx.astype(np.int32))

    pixels = digits_pixels(values)[:, None]  # (N, 1, 32, 32) uint8
    x_all = torch.from_numpy((pixels.astype(np.float32) / 255.0 - 0.5) / 0.5)
    y_all = torch.from_numpy(labels.astype(np.int64))
    x_tr, y_tr = x_all[train_idx], y_all[train_idx]

    model: nn.Module = Swin(SWIN_CONFIG) if swin else DeiT(CONFIG)
    decay = [p for n, p in model.named_parameters() if _decays(n, p)]
    no_decay = [p for n, p in model.named_parameters() if not _decays(n, p)]
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
        torch_logits = model(x_all[test_idx])
    torch_correct = int((torch_logits.argmax(-1) == y_all[test_idx]).sum())
    weights = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    weights_file = args.out / f"{args.model}.safetensors"
    save_file(weights, str(weights_file))

    # the recorded accuracy is refq's NumPy float64 forward on the saved weights
    from refq.nn.factory import create_model

    ref = create_model(cfg, weights_file, np.float64, weights_format="timm")
    x_test = (pixels[test_idx].astype(np.float64) / 255.0 - 0.5) / 0.5
    ref_logits = ref.forward(x_test)
    diff = float(np.max(np.abs(ref_logits - torch_logits.double().numpy())))
    if diff >= 1e-4:  # the torch module and refq's forward must be the same model
        raise SystemExit(f"torch and refq logits differ by {diff:.3g} (>= 1e-4)")
    pred = np.argmax(ref_logits, axis=-1)
    correct = int((pred == labels[test_idx]).sum())
    no_decay_what = ("biases, norms, relative position bias tables" if swin
                     else "biases, norms, tokens")
    info = {
        "config": cfg.to_dict(),
        "fp_test_accuracy": correct / len(test_idx),
        "fp_test_correct": correct,
        "n_test": len(test_idx),
        "n_calib": len(calib_idx),
        "n_train": len(train_idx),
        "torch_test_correct": torch_correct,
        "images": "digits_pixels: value*255//16 uint8, exact integer 4x bilinear to 32x32",
        "training": {
            "script": "tools/train_bundled.py" + (" --model swin_digits" if swin else ""),
            "seed": SEED, "epochs": args.epochs,
            "batch": args.batch, "optimizer": f"AdamW wd 0.05 (not on {no_decay_what})",
            "lr": args.lr, "schedule": "5-epoch linear warm-up, cosine to 0",
            "loss": "cross-entropy, label smoothing 0.1",
            "augmentation": "random translation up to 2 pixels",
            "torch": torch.__version__, "threads": 1, "seconds": round(train_s, 1),
        },
    }
    if swin:
        info["torch_refq_max_abs_logit_diff"] = float(f"{diff:.3g}")
    (args.out / f"{args.model}.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps({k: info[k] for k in ("fp_test_accuracy", "fp_test_correct",
                                           "torch_test_correct")}), f"{train_s:.0f} s")


if __name__ == "__main__":
    main()

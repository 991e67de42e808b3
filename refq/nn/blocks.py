"""The pre-norm transformer sub-blocks shared by ViT/DeiT and Swin, with their taps.

``attention`` and ``mlp`` read parameters ``{prefix}attn.*`` / ``{prefix}mlp.*`` (timm
naming) and call the tapper at ``{prefix}attn.qkv``, ``attn.q``, ``attn.k``, ``attn.v``,
``attn.q@k``, [``attn.logits``, ``attn.masked``], ``attn.softmax``, ``attn.attn@v``,
``attn.proj`` and
``{prefix}mlp.fc1``, ``mlp.gelu``, ``mlp.fc2``.
"""

from __future__ import annotations

from refq.nn.base import OpInfo, Params, Tapper
from refq.nn.layers import (
    FloatArray,
    attention_scores,
    gelu,
    linear,
    merge_heads,
    softmax,
    split_heads,
)


def attention(
    x: FloatArray,
    p: Params,
    prefix: str,
    num_heads: int,
    t: Tapper,
    bias: FloatArray | None = None,
    mask: FloatArray | None = None,
) -> FloatArray:
    """Multi-head self-attention: x (B', N, C) -> (B', N, C).

    ``bias`` (Swin's relative position bias, (H, N, N)), if given, is added to the scaled
    scores and the sum is tapped as ``attn.logits``; ``mask`` (Swin's shifted-window mask,
    (W, N, N), B' = B W with the windows of one image consecutive), if given, is added
    after that and the masked scores are tapped as ``attn.masked``, as the original code,
    timm and HF add the two.
    """
    a = prefix + "attn."
    qkv = t(a + "qkv", linear(x, p[a + "qkv.weight"], p.get(a + "qkv.bias")))
    q, k, v = split_heads(qkv, num_heads)
    q = t(a + "q", q)
    k = t(a + "k", k)
    v = t(a + "v", v)
    scale = float(q.shape[-1]) ** -0.5
    s = t(a + "q@k", attention_scores(q, k, scale))
    if bias is not None:
        s = t(a + "logits", s + bias)
    if mask is not None:
        bw, h, n, m = s.shape
        s = (s.reshape(bw // mask.shape[0], mask.shape[0], h, n, m) + mask[:, None]).reshape(
            bw, h, n, m
        )
        s = t(a + "masked", s)
    attn = t(a + "softmax", softmax(s, axis=-1))
    o = t(a + "attn@v", merge_heads(attn @ v))
    return t(a + "proj", linear(o, p[a + "proj.weight"], p[a + "proj.bias"]))


def mlp(x: FloatArray, p: Params, prefix: str, t: Tapper) -> FloatArray:
    """fc1 -> exact GELU -> fc2: x (..., C) -> (..., C)."""
    m = prefix + "mlp."
    h = t(m + "fc1", linear(x, p[m + "fc1.weight"], p[m + "fc1.bias"]))
    h = t(m + "gelu", gelu(h))
    return t(m + "fc2", linear(h, p[m + "fc2.weight"], p[m + "fc2.bias"]))


def block_tap_names(prefix: str, with_logits: bool = False,
                    with_mask: bool = False) -> list[str]:
    """Tap names of one pre-norm block under ``prefix`` (e.g. "blocks.3."), in order."""
    attn = ["qkv", "q", "k", "v", "q@k", *(["logits"] if with_logits else []),
            *(["masked"] if with_mask else []), "softmax", "attn@v", "proj"]
    return (
        [prefix + "norm1"]
        + [prefix + "attn." + n for n in attn]
        + [prefix + n for n in ("add1", "norm2", "mlp.fc1", "mlp.gelu", "mlp.fc2", "add2")]
    )


def block_ops(prefix: str) -> list[OpInfo]:
    """The linears and matmuls of one block under ``prefix``, in execution order."""
    a, m = prefix + "attn.", prefix + "mlp."
    return [
        OpInfo(a + "qkv", "linear", (prefix + "norm1",), a + "qkv.weight", a + "qkv",
               "qkv", ("post_norm",)),
        OpInfo(a + "q@k", "matmul", (a + "q", a + "k"), None, a + "q@k", "q@k",
               ("query", "key")),
        OpInfo(a + "attn@v", "matmul", (a + "softmax", a + "v"), None, a + "attn@v",
               "attn@v", ("post_softmax", "value")),
        OpInfo(a + "proj", "linear", (a + "attn@v",), a + "proj.weight", a + "proj", "proj",
               ("heads_merged",)),
        OpInfo(m + "fc1", "linear", (prefix + "norm2",), m + "fc1.weight", m + "fc1", "fc1",
               ("post_norm",)),
        OpInfo(m + "fc2", "linear", (m + "gelu",), m + "fc2.weight", m + "fc2", "fc2",
               ("post_gelu",)),
    ]


def block_param_shapes(
    prefix: str, dim: int, hidden: int, qkv_bias: bool
) -> dict[str, tuple[int, ...]]:
    """Parameter shapes of one pre-norm block of width ``dim`` and MLP width ``hidden``."""
    s: dict[str, tuple[int, ...]] = {
        prefix + "norm1.weight": (dim,),
        prefix + "norm1.bias": (dim,),
        prefix + "attn.qkv.weight": (3 * dim, dim),
    }
    if qkv_bias:
        s[prefix + "attn.qkv.bias"] = (3 * dim,)
    s.update({
        prefix + "attn.proj.weight": (dim, dim),
        prefix + "attn.proj.bias": (dim,),
        prefix + "norm2.weight": (dim,),
        prefix + "norm2.bias": (dim,),
        prefix + "mlp.fc1.weight": (hidden, dim),
        prefix + "mlp.fc1.bias": (hidden,),
        prefix + "mlp.fc2.weight": (dim, hidden),
        prefix + "mlp.fc2.bias": (dim,),
    })
    return s


__all__ = ["attention", "block_ops", "block_param_shapes", "block_tap_names", "mlp"]

"""The one list of recipes: name → options dataclass and calibration function. METHODS,
the option checks of the CLI and :func:`refq.methods.quantize_model`'s dispatch all derive
from :data:`RECIPES`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from refq.errors import SpecError
from refq.methods import fqvit, ias, minmax, ptq4vit, repq, tsptq
from refq.methods.context import Ctx
from refq.methods.options import RecipeOptions, did_you_mean
from refq.quant import QuantSpec

RunFn = Callable[[Ctx, Any, int], QuantSpec]


@dataclass(frozen=True)
class Recipe:
    """A method recipe: its ``name``, options type, calibration function, one-line
    ``summary`` and whether it has public code it reproduces (``official``)."""

    name: str
    options: type[RecipeOptions]
    run: RunFn
    summary: str
    official: str | None


RECIPES: dict[str, Recipe] = {r.name: r for r in (
    Recipe("minmax", minmax.MinmaxOptions, minmax.run,
           "min-max baseline (per-channel weights, per-tensor activations)", None),
    Recipe("ptq4vit", ptq4vit.PTQ4ViTOptions, ptq4vit.run,
           "PTQ4ViT: twin uniform, Hessian-guided search", "github.com/hahnyuan/PTQ4ViT"),
    Recipe("tsptq", tsptq.TSPTQOptions, tsptq.run,
           "TSPTQ-ViT: V-2SF / O-2SF, fully quantized (refq's reading; no public code)",
           None),
    Recipe("dopq", repq.DopQOptions, repq.run,
           "DopQ-ViT: RepQ-ViT's flow with MOSF and TanQ (no public code)", None),
    Recipe("ias", ias.IaSOptions, ias.run, "I&S-ViT: SULQ, percentile init, optional SOS",
           "github.com/zysxmu/IaS-ViT"),
    Recipe("repq", repq.RepQOptions, repq.run,
           "RepQ-ViT: log√2 softmax, post-LayerNorm scale reparameterization",
           "github.com/zkkli/RepQ-ViT"),
    Recipe("fqvit", fqvit.FQViTOptions, fqvit.run,
           "FQ-ViT: PTF LayerNorm inputs, log-int softmax, fully quantized",
           "github.com/megvii-research/FQ-ViT"),
)}

METHODS: tuple[str, ...] = tuple(RECIPES)


def recipe(method: str) -> Recipe:
    """The recipe ``method``; SpecError naming the known ones (and the nearest)."""
    r = RECIPES.get(method)
    if r is None:
        raise SpecError(f"unknown method {method!r}{did_you_mean(method, RECIPES)}; "
                        f"known: {', '.join(METHODS)}")
    return r


def check_options(method: str, opts: Mapping[str, Any]) -> RecipeOptions:
    """The validated options of ``method`` (SpecError before any work: unknown method or
    key — with the valid keys and the nearest — wrong type, value or range)."""
    return recipe(method).options.from_mapping(opts)


__all__ = ["METHODS", "RECIPES", "Recipe", "check_options", "recipe"]

"""Every file format refq reads, as published JSON Schema (draft 2020-12).

Each schema is generated from the same declaration the reader enforces (a tree of
:mod:`refq.files.schema` nodes, itself derived from the code: params dataclasses, the
variant registry, the quantizer registry, the config dataclasses), so the published files
and the readers cannot drift apart; ``python -m refq.schemas --check DIR`` (and a test)
says whether a folder of published schemas is current. refq's readers also make the checks
a schema cannot state (hashes, shapes against data, names against a model, canonical form);
see docs/file-formats.md.

Like the command line, this module sees every stage; nothing in refq imports it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from refq.files import json_bytes
from refq.files.schema import Node, document


@dataclass(frozen=True)
class Format:
    """One published file format: its schema file name (``<name>.schema.json``), title,
    description and the node its reader enforces."""

    name: str
    title: str
    description: str
    node: Callable[[], Node]


def _program() -> Node:
    from refq.program.schema import program_schema

    return program_schema(with_hashes=True)


def _spec(form: str) -> Callable[[], Node]:
    def node() -> Node:
        from refq.quant.schema import spec_schema

        return spec_schema(form)

    return node


def _config() -> Node:
    from refq.nn.configs import CONFIG_SCHEMA

    return CONFIG_SCHEMA


def _bundled() -> Node:
    from refq.nn.bundled import BUNDLED_INFO_SCHEMA

    return BUNDLED_INFO_SCHEMA


def _hf() -> Node:
    from refq.nn.checkpoints import HF_SCHEMA

    return HF_SCHEMA


def _timm() -> Node:
    from refq.nn.checkpoints import TIMM_SCHEMA

    return TIMM_SCHEMA


def _preprocessor() -> Node:
    from refq.nn.checkpoints import PREPROCESSOR_SCHEMA

    return PREPROCESSOR_SCHEMA


def _meta() -> Node:
    from refq.golden.schema import META

    return META


def _manifest() -> Node:
    from refq.golden.schema import MANIFEST_SCHEMA

    return MANIFEST_SCHEMA


def _known() -> Node:
    from refq.crosscheck.known import KNOWN_SCHEMA

    return KNOWN_SCHEMA


FORMATS: tuple[Format, ...] = (
    Format("program", "refq program.json",
           "An integer program: tensor declarations, ops (kernel variants with their integer "
           "params, movement ops), and the sha256 of every constant in consts/<name>.npy.",
           _program),
    Format("spec", "refq spec.json",
           "A QuantSpec folder's spec.json: per-tensor quantizers, kernel choices, notes, and "
           "the manifest (dtype, shape, sha256) of the arrays in params.npz.", _spec("folder")),
    Format("spec-document", "refq QuantSpec document",
           "A QuantSpec as one JSON document (QuantSpec.to_dict): params as nested lists.",
           _spec("document")),
    Format("model-config", "refq model config",
           "A ViT/DeiT or Swin model config (ModelConfig.to_dict).", _config),
    Format("bundled-model", "refq bundled model info",
           "refq/data/deit_digits.json: the bundled model's config and its records.", _bundled),
    Format("hf-config", "Hugging Face config.json (as refq reads it)",
           "The keys refq reads from a Hugging Face ViT/DeiT/Swin checkpoint's config.json; "
           "other keys are allowed.", _hf),
    Format("timm-config", "timm hub config.json (as refq reads it)",
           "The keys refq reads from a timm hub checkpoint's config.json.", _timm),
    Format("hf-preprocessor", "Hugging Face preprocessor_config.json (as refq reads it)",
           "The keys refq reads from a checkpoint's preprocessor_config.json.", _preprocessor),
    Format("golden-meta", "refq golden case meta.json",
           "One golden case: its tensors (file, shape, format, role, layout) and what re-runs "
           "it (a kernel variant and its params, or a program).", _meta),
    Format("golden-manifest", "refq golden MANIFEST.json",
           "A golden set's manifest: every case and the sha256 of every file.", _manifest),
    Format("known", "refq known-disagreements file",
           "A backend's known disagreements (refq check --known).", _known),
)
"""Every published format, by schema file name."""


def schemas() -> dict[str, dict[str, Any]]:
    """``<name>.schema.json`` → its JSON Schema document."""
    return {f"{f.name}.schema.json": document(f.node(), f.name, f.title, f.description)
            for f in FORMATS}


def write(folder: Path) -> list[str]:
    """Write every schema into ``folder`` (created if needed); the file names written."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, doc in schemas().items():
        (folder / name).write_bytes(json_bytes(doc))
        out.append(name)
    return out


def stale(folder: Path) -> list[str]:
    """The schema files of ``folder`` that are missing, differ from the code's, or are not
    published any more."""
    want = {name: json_bytes(doc) for name, doc in schemas().items()}
    have = {p.name for p in folder.glob("*.schema.json")} if folder.is_dir() else set()
    bad = [n for n, b in want.items() if not (folder / n).is_file()
           or (folder / n).read_bytes() != b]
    return sorted(bad + sorted(have - set(want)))


def main(argv: list[str] | None = None) -> int:
    """``python -m refq.schemas --write DIR | --check DIR``."""
    ap = argparse.ArgumentParser(prog="python -m refq.schemas", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", type=Path, metavar="DIR", help="write the schemas into DIR")
    mode.add_argument("--check", type=Path, metavar="DIR",
                      help="exit 1 if DIR's schemas differ from the code's")
    a = ap.parse_args(argv)
    if a.write:
        for name in write(a.write):
            print(a.write / name)
        return 0
    bad = stale(a.check)
    for name in bad:
        print(f"stale: {a.check / name}")
    return 1 if bad else 0


__all__ = ["FORMATS", "Format", "main", "schemas", "stale", "write"]

if __name__ == "__main__":
    sys.exit(main())

"""Sweep plans: which cells a sweep has, which calibration/quantization ("prep") each needs,
and the evaluation shards of each.

A *cell* is one accuracy number: a model, a data split (data, labels, seed, calib, limit),
and either the float model (method ``fp``) or a method × bits in one mode (``fake-quant``
or ``integer``), evaluated over shards of ``shard_size`` images. Its configuration — every
input its result depends on, by content (the model's and the data's fingerprints, not
their paths), plus the refq version and the shard size — is hashed (sha256 of the canonical
JSON) into the cell's key: a changed configuration is a new cell, never mixed with the rows
of another.

A *prep* is the calibration/quantization (and, for integer cells, the lowering) of one
method × bits on one model and calibration set: run once per sweep, its QuantSpec and
Program are shipped to the shard tasks of its cells.

The split is ``refq eval``'s (:func:`refq.nn.fit.calib_eval_split`; bundled data: the calib
and test splits), so a sweep reproduces ``refq eval``'s numbers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from refq._version import __version__
from refq.dist.store import canonical
from refq.errors import SpecError
from refq.nn.sources import ModelSource

MODES = ("float", "fake-quant", "integer")


@dataclass(frozen=True)
class DataRef:
    """Where the images are: ``kind`` "bundled" (the digits) or "folder" (``root``, read by
    whoever runs a task — a folder all workers see)."""

    kind: str
    root: str
    fingerprint: str

    @property
    def label(self) -> str:
        return "bundled digits" if self.kind == "bundled" else Path(self.root).name


@dataclass(frozen=True)
class Images:
    """A list of images a task loads itself: file paths (folder) or indices into the
    bundled digits, with the model output each one is labelled as."""

    data: DataRef
    items: tuple[str, ...] | tuple[int, ...]
    labels: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.items)

    def part(self, start: int, stop: int) -> Images:
        return Images(self.data, self.items[start:stop], self.labels[start:stop])


@dataclass(frozen=True)
class PrepJob:
    """Calibrate/quantize (and lower, if ``lower``) one method × bits."""

    prep: str
    config: str  # canonical JSON of the prep's configuration
    source: ModelSource
    method: str
    w_bits: int
    a_bits: int
    seed: int
    options: str  # canonical JSON of the recipe options
    calib: Images
    lower: bool
    threads: int | None = None


@dataclass(frozen=True)
class ShardJob:
    """Evaluate one shard of one cell (``mode`` float, fake-quant or integer)."""

    cell: str
    shard: int
    first: int
    mode: str
    source: ModelSource
    images: Images
    threads: int | None = None


@dataclass
class Cell:
    """One accuracy number of the table and its shards."""

    cell: str
    config: dict[str, Any]
    prep: str | None
    model: str
    data: str
    method: str
    mode: str
    w_bits: int | None
    a_bits: int | None
    seed: int
    shards: list[ShardJob]
    images: int

    def record(self) -> dict[str, Any]:
        """The row of the store's ``cells`` table."""
        return {"cell": self.cell, "config": canonical(self.config), "prep": self.prep,
                "model": self.model, "data": self.data, "method": self.method,
                "mode": self.mode, "w_bits": self.w_bits, "a_bits": self.a_bits,
                "seed": self.seed, "shards": len(self.shards), "images": self.images}


@dataclass
class Plan:
    """Every cell of a sweep and the preps they need (keyed by prep hash)."""

    cells: list[Cell] = field(default_factory=list)
    preps: dict[str, PrepJob] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)


def config_hash(config: dict[str, Any]) -> str:
    """sha256 (hex) of the canonical JSON of ``config``."""
    return hashlib.sha256(canonical(config).encode()).hexdigest()


def folder_fingerprint(classes: list[str], samples: list[tuple[Path, int]], root: Path) -> str:
    """sha256 over the class names and every sample's relative path and size: the same
    files in another place give the same fingerprint; an added, removed, renamed or
    resized file gives another."""
    h = hashlib.sha256(canonical(classes).encode())
    for path, label in samples:
        h.update(f"{path.relative_to(root).as_posix()}\0{path.stat().st_size}\0{label}\n"
                 .encode())
    return h.hexdigest()


def bundled_data() -> DataRef:
    from refq.nn.bundled import DIGITS_FILE

    return DataRef("bundled", "bundled", hashlib.sha256(DIGITS_FILE.read_bytes()).hexdigest())


@dataclass
class Options:
    """What a sweep varies and fixes (the command's options, parsed)."""

    sources: list[ModelSource]
    data: Path | None
    labels: str
    seeds: list[int]
    calib: int
    limit: int | None
    methods: list[str]
    bits: list[tuple[int, int]]
    integer: bool
    options: dict[str, dict[str, Any]]
    shard_size: int
    threads: int | None = None


@dataclass(frozen=True)
class _Listing:
    """An image folder listed once per sweep: classes, samples, fingerprint."""

    data: DataRef
    classes: list[str]
    samples: list[tuple[Path, int]]


def _list_folder(root: Path) -> _Listing:
    from refq.nn import EvalTransform, ImageFolder

    folder = ImageFolder(root, EvalTransform(1, 1.0, (0.0,), (1.0,)))  # listing only
    data = DataRef("folder", str(Path(root).resolve()),
                   folder_fingerprint(folder.classes, folder.samples, folder.root))
    return _Listing(data, folder.classes, folder.samples)


def _splits(opts: Options, source: ModelSource, seed: int, listing: _Listing | None,
            ) -> tuple[DataRef, Images, Images]:
    """(data, calibration images, evaluation images) of ``source`` and ``seed``."""
    if listing is None:
        if source.kind != "bundled":
            raise SpecError(f"--model {source.label}: --data IMAGEFOLDER is required")
        from refq.nn import load_digits

        digits = load_digits()
        data = bundled_data()
        cal = [int(i) for i in digits.calib_idx[: opts.calib]]
        ev = [int(i) for i in digits.test_idx[: opts.limit]]
        return (data, Images(data, tuple(cal), tuple(int(digits.labels[i]) for i in cal)),
                Images(data, tuple(ev), tuple(int(digits.labels[i]) for i in ev)))
    from refq.nn.fit import calib_eval_split

    outputs = _outputs(opts, source, listing)
    cal_idx, ev_idx = calib_eval_split(len(listing.samples), opts.calib, seed, opts.limit)

    def images(idx: Any) -> Images:
        picked = [listing.samples[int(i)] for i in idx]
        return Images(listing.data, tuple(str(p.resolve()) for p, _ in picked),
                      tuple(outputs[lab] for _, lab in picked))

    return listing.data, images(cal_idx), images(ev_idx)


def _outputs(opts: Options, source: ModelSource, listing: _Listing) -> list[int]:
    """The model output of each folder class; SpecError if data and model do not fit."""
    from refq.nn.fit import check_channels, class_map

    cfg = source.config()
    outputs = class_map(listing.classes, source.class_names(), cfg.num_classes,
                        data=str(opts.data), model=source.label, by=opts.labels)
    check_channels(listing.samples, cfg.in_chans, data=str(opts.data), model=source.label)
    return outputs


def _cell(config: dict[str, Any], prep: str | None, method: str, mode: str,
          bits: tuple[int, int] | None, source: ModelSource, data: DataRef, seed: int,
          evaluation: Images, opts: Options) -> Cell:
    key = config_hash(config)
    starts = range(0, len(evaluation), opts.shard_size)
    shards = [ShardJob(key, i, first, mode, source,
                       evaluation.part(first, first + opts.shard_size), opts.threads)
              for i, first in enumerate(starts)]
    return Cell(key, config, prep, source.label, data.label, method, mode,
                bits[0] if bits else None, bits[1] if bits else None, seed, shards,
                len(evaluation))


def build_plan(opts: Options) -> Plan:
    """The cells and preps of a sweep (model fingerprints and the data listing are taken
    here, once). SpecError on input that does not fit (see :mod:`refq.nn.fit`)."""
    if opts.shard_size < 1:
        raise SpecError(f"--shard-size must be >= 1, got {opts.shard_size}")
    plan = Plan()
    listing = _list_folder(opts.data) if opts.data is not None else None
    for source in opts.sources:
        plan.sources.append(source.describe())
        fingerprint = source.fingerprint()
        for seed in opts.seeds:
            data, calib, evaluation = _splits(opts, source, seed, listing)
            base = {"refq": __version__, "model": fingerprint, "data": data.fingerprint,
                    "seed": seed, "calib": opts.calib}
            evals = {**base, "labels": opts.labels, "limit": opts.limit,
                     "shard_size": opts.shard_size}
            where = (source, data, seed, evaluation, opts)
            plan.cells.append(_cell({**evals, "method": "fp", "mode": "float"}, None, "fp",
                                    "float", None, *where))
            for method in opts.methods:
                for w, a in opts.bits:
                    prep_cfg = {**base, "method": method, "w_bits": w, "a_bits": a,
                                "options": opts.options.get(method, {})}
                    prep = config_hash(prep_cfg)
                    plan.preps[prep] = PrepJob(
                        prep, canonical(prep_cfg), source, method, w, a, seed,
                        canonical(opts.options.get(method, {})), calib, opts.integer,
                        opts.threads)
                    for mode in ["fake-quant"] + (["integer"] if opts.integer else []):
                        plan.cells.append(_cell({**evals, **prep_cfg, "mode": mode}, prep,
                                                method, mode, (w, a), *where))
    return plan


__all__ = ["MODES", "Cell", "DataRef", "Images", "Options", "Plan", "PrepJob", "ShardJob",
           "build_plan", "bundled_data", "config_hash", "folder_fingerprint"]

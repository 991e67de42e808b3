"""The tasks of a sweep, run by workers (or in the sweeping process without a cluster).

* :func:`prepare` — one prep: load the model, read the calibration images, run the recipe
  (``refq.methods.quantize_model``), lower to a Program if asked (``refq.program.lower``);
  the result (:class:`Prepared`) stays on the cluster and is handed to the shard tasks.
* :func:`summarize` — the prep's store row (hashes, timings, refusals): what the sweeping
  process fetches instead of the spec and program themselves.
* :func:`evaluate_shard` — top-1 hits of one shard: the float model, the fake-quant
  simulation of the spec (``refq.methods.fake_quant``) or the integer Program
  (``refq.program.run``), on images the task reads itself, in batches of 100 (the batches
  of ``refq eval``, so the float and fake-quant numbers are the same to the last bit).

A RefqError of a recipe, of lowering or of an evaluation is a result (stored, shown as n/a
with its reason), any other exception a failure of the task (not stored; a re-run tries
again). Models, data and fake-quant models are cached per worker process.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from refq._version import __version__
from refq.errors import RefqError
from refq.nn.sources import ModelSource
from refq.sweep.plan import Images, PrepJob, ShardJob

BATCH = 100


def worker_name() -> str:
    """host:pid of the process running a task."""
    return f"{socket.gethostname()}:{os.getpid()}"


@contextmanager
def _blas(threads: int | None) -> Iterator[None]:
    if threads is None:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]
    except ImportError:  # the environment of the worker decides
        yield
        return
    with threadpool_limits(limits=threads, user_api="blas"):
        yield


@lru_cache(maxsize=4)
def folded_model(source: ModelSource) -> Any:
    """The model of ``source`` with its normalisation folded (uint8 pixels in)."""
    return source.load().fold_normalization()


@lru_cache(maxsize=1)
def _digits() -> Any:
    from refq.nn import load_digits

    return load_digits()


def load_images(images: Images, source: ModelSource,
                ) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """uint8 (B, C, S, S) pixels and int64 labels of ``images``, read here."""
    labels = np.asarray(images.labels, dtype=np.int64)
    if images.data.kind == "bundled":
        idx = np.asarray(images.items, dtype=np.int64)
        return _digits().images[idx], labels
    from refq.nn import eval_transform, load_image

    t = eval_transform(source.config())
    pixels = [t.pixels(load_image(str(p), t.mode)) for p in images.items]
    return np.stack(pixels), labels


def spec_sha256(spec: Any) -> str:
    """sha256 of a QuantSpec: the canonical JSON of its fields and quantizers (what
    ``spec.json`` holds), then every param's name, dtype, shape and little-endian bytes,
    in name order."""
    head = {"method": spec.method, "model": spec.model, "w_bits": spec.w_bits,
            "a_bits": spec.a_bits, "kernels": spec.kernels, "notes": spec.notes,
            "weights": {k: q.to_dict() for k, q in spec.weights.items()},
            "activations": {k: q.to_dict() for k, q in spec.activations.items()}}
    h = hashlib.sha256(json.dumps(head, sort_keys=True, allow_nan=False).encode())
    for name, arr in sorted(spec.params.items()):
        a = np.ascontiguousarray(arr)
        a = a.astype(a.dtype.newbyteorder("<"))
        h.update(f"\0{name}\0{a.dtype.str}\0{list(a.shape)}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def program_sha256(program: Any) -> str:
    """sha256 of a Program: its canonical JSON (``refq.program.files.program_dict``), then
    every const's name, shape and int64 little-endian bytes, in name order."""
    from refq.program.files import program_dict

    h = hashlib.sha256(json.dumps(program_dict(program), sort_keys=True).encode())
    for name in sorted(program.consts):
        a = np.ascontiguousarray(program.consts[name], dtype="<i8")
        h.update(f"\0{name}\0{list(a.shape)}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()


@dataclass
class Prepared:
    """A prep's outcome: the spec and program (None where refused or not lowered), their
    hashes, the refusals, CPU and wall seconds, and who ran it."""

    prep: str
    config: str
    spec: Any
    program: Any
    spec_sha256: str | None
    program_sha256: str | None
    recipe_error: str | None
    lowering_error: str | None
    lowered: bool
    cpu_s: float
    wall_s: float
    worker: str


def prepare(job: PrepJob) -> Prepared:
    """Calibrate and quantize (and lower) one method × bits; see the module docstring."""
    from refq.methods import quantize_model
    from refq.program import lower

    t0, c0 = time.perf_counter(), time.process_time()
    spec = program = None
    spec_sha = program_sha = recipe_error = lowering_error = None
    with _blas(job.threads):
        model = folded_model(job.source)
        calib, _ = load_images(job.calib, job.source)
        try:
            spec = quantize_model(model, job.method, job.w_bits, job.a_bits, calib,
                                  seed=job.seed, **json.loads(job.options))
            spec_sha = spec_sha256(spec)
        except RefqError as e:
            recipe_error = f"recipe: {e}"
        if spec is not None and job.lower:
            try:
                program = lower(model, spec, calib)
                program_sha = program_sha256(program)
            except RefqError as e:
                lowering_error = f"lowering: {e}"
    return Prepared(job.prep, job.config, spec, program, spec_sha, program_sha, recipe_error,
                    lowering_error, job.lower and spec is not None,
                    time.process_time() - c0, time.perf_counter() - t0, worker_name())


def summarize(p: Prepared) -> dict[str, Any]:
    """The store row of a prep (no spec, no program)."""
    return {"prep": p.prep, "config": p.config, "spec_sha256": p.spec_sha256,
            "recipe_error": p.recipe_error, "lowered": int(p.lowered),
            "program_sha256": p.program_sha256, "lowering_error": p.lowering_error,
            "cpu_s": p.cpu_s, "wall_s": p.wall_s, "worker": p.worker,
            "refq_version": __version__}


_FAKE_QUANT: dict[tuple[ModelSource, str], Any] = {}


def _fake_quant(source: ModelSource, p: Prepared) -> tuple[Any, Any]:
    from refq.methods import fake_quant

    key = (source, str(p.spec_sha256))
    if key not in _FAKE_QUANT:
        _FAKE_QUANT.clear()  # one at a time: a fake-quant model is as big as the model
        _FAKE_QUANT[key] = fake_quant(folded_model(source), p.spec)
    return _FAKE_QUANT[key]  # type: ignore[no-any-return]


def _hits(job: ShardJob, p: Prepared | None, x: npt.NDArray[np.uint8],
          y: npt.NDArray[np.int64]) -> int:
    hits = 0
    if job.mode == "integer":
        from refq.program import run

        assert p is not None
        logits = str(p.program.meta.get("logits", p.program.outputs[0]))
        for i in range(0, x.shape[0], BATCH):
            out = run(p.program, {"input": x[i:i + BATCH]}, keep="outputs")
            hits += int(np.sum(np.argmax(out[logits], axis=-1) == y[i:i + BATCH]))
        return hits
    if job.mode == "fake-quant":
        assert p is not None
        model, tap = _fake_quant(job.source, p)
    else:
        model, tap = folded_model(job.source), None
    for i in range(0, x.shape[0], BATCH):
        logits = model.forward(x[i:i + BATCH], tap=tap)
        hits += int(np.sum(np.argmax(logits, axis=-1) == y[i:i + BATCH]))
    return hits


def evaluate_shard(job: ShardJob, p: Prepared | None) -> dict[str, Any] | None:
    """The store row of one shard, or None when its prep refused (the cell is n/a for the
    reason stored with the prep)."""
    if p is not None and (p.spec is None or (job.mode == "integer" and p.program is None)):
        return None
    t0, c0 = time.perf_counter(), time.process_time()
    correct: int | None = None
    error: str | None = None
    with _blas(job.threads):
        try:
            x, y = load_images(job.images, job.source)
            correct = _hits(job, p, x, y)
        except RefqError as e:
            error = f"{job.mode}: {type(e).__name__}: {e}"
    return {"cell": job.cell, "shard": job.shard, "first": job.first,
            "count": len(job.images), "correct": correct,
            "status": "ok" if error is None else "error", "error": error,
            "spec_sha256": p.spec_sha256 if p is not None else None,
            "program_sha256": p.program_sha256 if p is not None and job.mode == "integer"
            else None,
            "refq_version": __version__, "cpu_s": time.process_time() - c0,
            "wall_s": time.perf_counter() - t0, "worker": worker_name()}


def versions() -> dict[str, str]:
    """refq and NumPy versions of the process running this (workers must match)."""
    return {"refq": __version__, "numpy": np.__version__}


__all__ = ["BATCH", "Prepared", "evaluate_shard", "folded_model", "load_images", "prepare",
           "program_sha256", "spec_sha256", "summarize", "versions", "worker_name"]

"""How tests/docs runs each documented command that is not a quick one (see README.md here).

Every entry must match at least one documented command (checked), and every command it
matches gets its ``kind``:

* ``slow``  — runs only under ``pytest -m slow`` (with the rest of its block, in order);
* ``skip``  — never run; the reason is shown as the pytest skip reason of that command
  (``pytest -rs tests/docs`` lists them all);
* ``strip`` — the part matched by ``pattern`` is removed before running (an install step:
  the tests run against the checkout they belong to); the rest of the command still runs;
* ``collect`` — a ``python -m pytest …`` run of part of this suite (which runs those tests
  itself): the default suite runs it with ``--collect-only`` (its paths and imports must
  hold), ``-m slow`` runs it in full.

:data:`NEEDS` says which commands need an optional extra or tool (a module name, or
``exe:NAME`` for a program on PATH): they are skipped when it is missing, except with
``CI=true``, where that is a failure (CI installs every extra).

``pattern`` is a regular expression searched in the command text; ``page`` (optional) a glob
over the page path. Unlisted commands are quick: they run in the default suite, and one over
:data:`FAST_CPU_SECONDS` of CPU time is reported with a warning.
"""

from __future__ import annotations

from dataclasses import dataclass

FAST_CPU_SECONDS = 20.0


@dataclass(frozen=True)
class Mark:
    pattern: str
    kind: str  # "slow" | "skip" | "strip" | "collect"
    reason: str
    page: str = "*"


_INSTALLS = "installs into the environment running the tests; installing is tested by " \
    "tests/packaging (a wheel in a fresh venv)"

MARKS: list[Mark] = [
    # README: installation and the suite itself
    Mark(r'^python -m pip install -e "\.\[test\]" && ', "strip", _INSTALLS, "README.md"),
    Mark(r'^python -m pip install -e "\.\[test,dev\]"$', "skip", _INSTALLS, "README.md"),
    Mark(r"^refq demo$", "slow", "the full demo: about 110 CPU-seconds"),
    Mark(r"^(HYPOTHESIS_PROFILE=\w+ )?python -m pytest( -q)? tests/", "collect",
         "part of this test suite"),
    Mark(r"^python -m pytest$", "skip",
         "the test suite itself, of which this harness is a part (CI runs it: .ci/run)"),
    Mark(r"^python -m pytest -m slow$", "skip",
         "the slow run of the suite itself, of which this harness is a part"),
    Mark(r"^bash \.ci/run$", "skip",
         "the CI entry point: installs OS and pip packages, then lints and runs the suite"),
    Mark(r"^python -m ruff check refq tests tools && python -m mypy$", "slow",
         "CI's lint step (.ci/run runs exactly this): ruff, then mypy --strict over refq"),
    Mark(r"--examples 2000", "slow", "a conformance hunt: ~8 min"),
    Mark(r"^python tools/bench/", "slow", "a benchmark"),
    Mark(r"^python tools/fuzz_readers\.py --mutants 5040", "slow",
         "the full mutation run of every reader: several CPU-minutes", "docs/file-formats.md"),
    Mark(r"run_stream\.py .*--sim verilator", "slow",
         "Verilator's C++ build of the DUT: about a minute", "docs/rtl.md"),
    # README: evaluation examples
    Mark(r"--weights deit_s\.safetensors --data imagenet/val", "skip",
         "needs the user's deit_small weights and an ImageNet validation folder"),
    Mark(r"^refq eval --methods minmax,repq --bits W8A8,W4A4 --integer", "slow",
         "4 quantize + integer evaluations on 400 images"),
    Mark(r"^refq eval --model swin_digits --methods repq --bits W8A8 --integer$", "slow",
         "an integer-only evaluation on 400 images (tests/commands covers swin_digits)"),
    Mark(r"^refq eval --bits W4A4 --opt ptq4vit", "slow",
         "every method, I&S-ViT's SOS at 50 steps: minutes"),
    Mark(r"^refq report --method tsptq", "slow", "per-layer statistics and a plot per tensor"),
    Mark(r"^refq quantize --method ptq4vit --bits W6A6", "slow",
         "PTQ4ViT's Hessian-guided search: ~10 CPU-s"),
    Mark(r"^refq check --backend reference --golden golden$", "slow",
         "100 hypothesis examples per kernel and the whole golden set: ~20 CPU-s"),
    # docs pages
    Mark(r"^refq eval --bits W8A8(,W6A6,W4A4)? --integer --calib 32", "slow",
         "a results table: every method, integer-only evaluation on 400 images"),
    Mark(r"^for p in refq ibert ivit tflite; do", "slow",
         "every recipe at W8A8 lowered in each of the four kernel profiles: ~4 x 3 CPU-min",
         "docs/results.md"),
    Mark(r"^refq eval --model swin_digits --bits W8A8,W6A6,W4A4 --integer --calib 32", "slow",
         "the bundled-Swin results table: every method, integer-only evaluation on 400 "
         "images: ~90 CPU-s"),
    Mark(r"^refq eval --calib 64 --threads 1 --quiet", "slow", "one method's accuracy run",
         "docs/results-gradients*.md"),
    # one gradients_seeds.py run (quantize + evaluate on 400 images) measured at >= 110
    # CPU-s (2026-12-08, loaded 2-core VM): single runs, ``cost`` and ``diag`` run; the
    # loops of 10-30 runs do not (and neither does what reads their results)
    Mark(r"^nice -n 10 python tools/gradients_seeds\.py (run |cost$|diag )", "slow",
         "one reproduction run, or the cost / calibration diagnostics: CPU-minutes",
         "docs/results-gradients*.md"),
    Mark(r"^for .*\n.*tools/gradients_(seeds|balanced)\.py run |gradients_balanced\.py all ",
         "skip", "10 to 30 reproduction runs of >= 110 CPU-s each: CPU-hours in all",
         "docs/results-gradients*.md"),
    Mark(r"tools/gradients_(seeds|balanced)\.py (table|decide) ", "skip",
         "reads the results of the reproduction runs above, which are not run (CPU-hours)",
         "docs/results-gradients*.md"),
    Mark(r"^python tools/gradients_exp\.py", "slow",
         "one calibration run with the gradient options: ~10 CPU-s to ~5 CPU-min (SOS)",
         "docs/results-gradients*.md"),
    Mark(r"^python tools/integer_gap\.py ", "slow", "integerization gap study: ~5 min"),
    Mark(r"^refq eval --methods repq --bits W8A8 --integer --kernels \w+$", "slow",
         "an integer-only evaluation on 400 images: ~9 CPU-s (tests/commands covers --kernels)"),
    Mark(r"^refq eval --model my-vit/ --data imagenet/val", "skip",
         "needs the user's Hugging Face checkpoint folder and an ImageNet validation folder"),
    Mark(r"^pip install 'refq\[dist\]'", "skip", _INSTALLS),
    Mark(r"^refq sweep --methods minmax,repq --bits W8A8,W4A4 --integer --workers 2 ", "slow",
         "4 quantize + integer evaluations on a 2-worker local Dask cluster"),
    Mark(r"^refq sweep --report --results r\.sqlite|^sqlite3 r\.sqlite", "slow",
         "reads the r.sqlite of the sweep above"),
    Mark(r"^for W in 1 2; do\n *refq sweep", "slow", "the scaling measurement: two sweeps"),
    Mark(r"--scheduler tcp://scheduler-host", "skip",
         "needs a Dask cluster, the user's weights and an ImageNet validation folder"),
    Mark(r"--workers 16 --examples 100000", "skip",
         "a hunt of 100 000 examples per op on 16 workers: CPU-hours"),
    Mark(r"--backend hls4ml|^refq golden generate --out (G|MLP) --only", "slow",
         "builds hls4ml's C++ emulation of each case with g++ (the generated G, MLP feed it)",
         "docs/backends/hls4ml.md"),
    Mark(r"--format qonnx --out Q|--backend qonnx", "slow",
         "every golden case through QONNX's executor", "docs/backends/qonnx.md"),
    Mark(r"^tosa_verif_run_tests|^iree-compile|^iree-run-module|out\.npy|--backend iree", "slow",
         "every exported folder on the TOSA reference model (~31 CPU-s), IREE compiles",
         "docs/backends/tosa.md"),
    Mark(r"--only 'program\.swin_random|--out T-swin", "slow",
         "generates and exports the extended Swin program cases (~30 CPU-s)",
         "docs/backends/tosa.md"),
    Mark(r"run_onnx_suite\(OnnxRuntimeBackend\(\), examples=100", "slow",
         "the onnxruntime hunts at 100 examples: ~9 CPU-s (tests/crosscheck runs them at 10)"),
]


@dataclass(frozen=True)
class Need:
    pattern: str
    needs: tuple[str, ...]


NEEDS: list[Need] = [
    Need(r"--backend torch|test_torch", ("torch",)),
    Need(r"--backend onnxruntime|onnxruntime|test_onnx", ("onnx", "onnxruntime")),
    Need(r"--backend rtl|test_rtl", ("cocotb", "exe:iverilog", "exe:vvp")),
    Need(r"tools/rtl/", ("exe:iverilog", "exe:vvp")),
    Need(r"tools/rtl/stream/", ("cocotb",)),
    Need(r"--plots", ("matplotlib",)),
    Need(r"^refq sweep|^for W in .*\n *refq sweep", ("dask", "distributed")),
    Need(r"^sqlite3 ", ("exe:sqlite3",)),
    Need(r"--backend hls4ml", ("hls4ml", "exe:g++")),
    Need(r"qonnx", ("qonnx", "onnx")),
    Need(r"--format tosa|tosa_verif_run_tests", ("tosa_serializer", "exe:tosa_verif_run_tests")),
    Need(r"iree-compile|iree-run-module|--backend iree",
         ("iree.compiler", "iree.runtime", "exe:iree-compile", "exe:iree-run-module")),
]

__all__ = ["FAST_CPU_SECONDS", "MARKS", "NEEDS", "Mark", "Need"]

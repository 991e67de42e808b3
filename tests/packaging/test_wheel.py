"""Packaging as users install it: build the sdist and, from it, the wheel (``python -m
build``, no deprecation warning), install the wheel — not editable — into a fresh virtual
environment and run refq from there: golden generate/verify (byte-identical to the
committed set) and one eval on the bundled data.

The venv reuses the installed dependencies (numpy, scipy, ... are not reinstalled) but every
refq module comes from the wheel: checked module by module. ``--no-isolation`` builds with
the installed setuptools (>= 77, the ``test`` extra), so no network is needed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CASES = ("requantize.dyadic.int32_int8.b3_c1_half_even", "block.deit_digits.repq.w8a8.encoder")
_SKIP_TOP = {".git", "golden", "build", "dist"}
_SKIP_ANY = {"__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis"}
DEPENDENCIES = ("numpy", "scipy", "PIL", "safetensors", "tqdm")


def _source_tree(dst: Path) -> Path:
    """The checkout's files without the golden set, caches and build outputs."""
    def ignore(folder: str, names: list[str]) -> set[str]:
        top = Path(folder) == ROOT
        return {n for n in names if n in _SKIP_ANY or n.endswith(".egg-info")
                or (top and n in _SKIP_TOP)}

    shutil.copytree(ROOT, dst, ignore=ignore)
    return dst


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["OPENBLAS_NUM_THREADS"] = "1"
    return env


def _run(cmd: list[str], cwd: Path) -> str:
    out = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True)
    assert out.returncode == 0, f"{cmd}:\n{out.stdout}\n{out.stderr}"
    return out.stdout + out.stderr


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    if os.environ.get("CI") != "true":
        pytest.importorskip("build", reason="the test extra installs build")
    tmp = tmp_path_factory.mktemp("pkg")
    src = _source_tree(tmp / "src")
    log = _run([sys.executable, "-m", "build", "--no-isolation", "--outdir",
                str(tmp / "dist"), str(src)], tmp)
    return tmp / "dist", log


def test_build_gives_sdist_and_wheel_without_deprecation_warnings(
    built: tuple[Path, str]
) -> None:
    dist, log = built
    assert "deprecat" not in log.lower(), log
    (wheel,) = dist.glob("refq-*.whl")
    (sdist,) = dist.glob("refq-*.tar.gz")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = z.read(info).decode()
    assert "License-Expression: Apache-2.0" in metadata.splitlines()
    assert "License-File: LICENSE" in metadata.splitlines()
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    for packaged in ("refq/py.typed", "refq/data/deit_digits.safetensors",
                     "refq/data/swin_digits.safetensors", "refq/data/swin_digits.json",
                     "refq/data/digits.npz", "refq/golden/specs/repq.w8a8/params.npz"):
        assert packaged in names
    import tarfile

    with tarfile.open(sdist) as t:
        members = {m.name.split("/", 1)[-1] for m in t.getmembers()}
    assert {"LICENSE", "README.md", "pyproject.toml"} <= members


def test_wheel_installed_in_a_fresh_venv_generates_verifies_and_evaluates(
    built: tuple[Path, str], tmp_path: Path
) -> None:
    dist, _ = built
    (wheel,) = dist.glob("refq-*.whl")
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path)
    py = venv / "bin" / "python"
    site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                     tmp_path).strip())
    # The dependencies (and pip) come from their installed folders, named in a .pth file:
    # plain path entries, so that folder's own .pth hooks (e.g. an editable refq's import
    # finder) do not run in the venv, as they would with --system-site-packages.
    import importlib

    folders = {str(Path(importlib.import_module(m).__file__ or "").parents[1])
               for m in (*DEPENDENCIES, "pip")}
    (site / "refq_test_dependencies.pth").write_text("\n".join(sorted(folders)) + "\n")
    _run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", str(wheel)],
         tmp_path)
    check = ("import sys, pkgutil, importlib, refq\n"
             "for m in pkgutil.walk_packages(refq.__path__, 'refq.'):\n"
             "    if 'adapters' not in m.name and not m.name.endswith('__main__'):\n"
             "        importlib.import_module(m.name)\n"
             "print('\\n'.join(sorted({str(getattr(m, '__file__', '') or '')\n"
             "      for n, m in sys.modules.items() if n.split('.')[0] == 'refq'})))")
    files = _run([str(py), "-c", check], tmp_path).split()
    assert len(files) > 50
    outside = [f for f in files if not Path(f).resolve().is_relative_to(venv.resolve())]
    assert not outside, f"refq modules not from the wheel: {outside[:3]}"
    refq = str(venv / "bin" / "refq")
    _run([refq, "golden", "generate", "--out", "g", "--only", ",".join(CASES), "--quiet"],
         tmp_path)
    out = _run([refq, "golden", "verify", "g", "--quiet"], tmp_path)
    assert "2 of 2 cases match" in out
    for case in CASES:  # the installed refq writes the committed bytes
        files = sorted(p.relative_to(tmp_path / "g" / case)
                       for p in (tmp_path / "g" / case).rglob("*") if p.is_file())
        assert files == sorted(p.relative_to(ROOT / "golden" / case)
                               for p in (ROOT / "golden" / case).rglob("*") if p.is_file())
        for rel in files:
            assert (tmp_path / "g" / case / rel).read_bytes() == (
                ROOT / "golden" / case / rel).read_bytes(), f"{case}/{rel}"
    out = _run([refq, "eval", "--methods", "minmax", "--bits", "W8A8", "--limit", "20",
                "--calib", "4", "--integer", "--quiet"], tmp_path)
    assert "evaluated 20 images" in out and "minmax | W8A8" in out

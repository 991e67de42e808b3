"""The hls4ml backend: refq's hls4ml-style golden cases and hypothesis cases on hls4ml's
compiled emulation, every tensor of the DeiT block-0 MLP end to end, the tables refq pins
equal to the ones hls4ml's C++ computes, and a deliberately wrong cast mode caught."""

from __future__ import annotations

import dataclasses
import importlib.util
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ..extras import require_extra

pytestmark = pytest.mark.hls

require_extra("hls", ("hls4ml",), ("g++",))

from refq.crosscheck import run_suite  # noqa: E402
from refq.crosscheck.adapters.hls4ml_backend import Hls4mlBackend  # noqa: E402
from refq.crosscheck.adapters.hls4ml_models import Unmappable, map_program  # noqa: E402
from refq.crosscheck.mismatch import compare_outputs  # noqa: E402
from refq.golden.case import Case  # noqa: E402
from refq.golden.cases_hls4ml import (  # noqa: E402
    CASTS,
    MLP_NAME,
    cast_case,
    layernorm_catalogue,
    softmax_catalogue,
)
from refq.golden.registry import lookup  # noqa: E402
from refq.intmath.apfixed import ApType  # noqa: E402

HLS_CASES = [
    *(f"requantize.ap_fixed.int32.{t.replace('<', '_').replace('>', '').replace(',', '_').lower()}"
      for t in CASTS),
    "program.hls4ml.dense.k16n8",
    "softmax.hls4ml_stable.rows16x12",
    "softmax.hls4ml_latency.rows16x12",
    "softmax.hls4ml_legacy.rows16x12",
    "layernorm.hls4ml.rows16x16",
    MLP_NAME,
]


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hls4mlBackend]:
    yield Hls4mlBackend(tmp_path_factory.mktemp("hls4ml"))


@pytest.fixture(scope="module")
def cases() -> dict[str, Case]:
    return {name: lookup(name).make() for name in HLS_CASES}


def test_hls4ml_cases_equal(backend: Hls4mlBackend, cases: dict[str, Case]) -> None:
    """Every hls4ml golden case: hls4ml's outputs equal refq's, and so does every other
    tensor the model computes (program cases return all of them)."""
    for name, case in cases.items():
        assert backend.supports(case), name
        got = backend.run(case)
        expected = {t: (v.values, v.fmt) for t, v in case.tensors.items()
                    if t in got and v.role in ("output", "intermediate")}
        assert expected, name
        assert compare_outputs(expected, got) == [], name
    assert backend.compiles <= 5  # casts, dense, the softmaxes (one model), layernorm, MLP


def test_mlp_end_to_end(backend: Hls4mlBackend, cases: dict[str, Case]) -> None:
    """fc1 → requantize → GELU table → fc2 → requantize of the bundled DeiT's block 0
    (min-max W8A8): all five tensors equal refq's golden ones."""
    case = cases[MLP_NAME]
    got = backend.run(case)
    names = {"blocks.0.mlp.fc1.acc", "blocks.0.mlp.fc1", "blocks.0.mlp.gelu",
             "blocks.0.mlp.fc2.acc", "blocks.0.mlp.fc2"}
    assert names <= set(got)
    for t in names:
        np.testing.assert_array_equal(got[t], case.tensors[t].values.astype(np.int64), strict=False)


def test_generated_cases(backend: Hls4mlBackend) -> None:
    """refq's suite with the backend's own strategies (catalogue configurations)."""
    report = run_suite(backend, ops=["requantize.ap_fixed", "softmax.hls4ml_*",
                                     "layernorm.hls4ml", "hls4ml.dense"], examples=12,
                       extra_strategies=backend.suite_extras().strategies)
    statuses = {e.key: (e.status, e.examples) for e in report.entries}
    assert {k: s for k, (s, _) in statuses.items()} == dict.fromkeys(statuses, "pass"), statuses
    assert len(statuses) == 6 and all(n >= 10 for _, n in statuses.values()), statuses


class WrongModeBackend(Hls4mlBackend):
    """Negative control: runs an AP_RND_CONV cast on the catalogue's AP_RND branch."""

    def run(self, case: Case) -> dict[str, np.ndarray]:
        p = case.meta["params"]
        key = f"{case.meta.get('op')}.{case.meta.get('variant')}"
        if key == "requantize.ap_fixed" and "AP_RND_CONV" in p["out_type"]:
            wrong = dataclasses.replace(case, meta=dict(case.meta, params=dict(
                p, out_type=p["out_type"].replace("AP_RND_CONV", "AP_RND"))))
            return super().run(wrong)
        return super().run(case)


def test_wrong_cast_mode_is_caught(backend: Hls4mlBackend, tmp_path: Path) -> None:
    case = cast_case("ap_fixed<8,3,AP_RND_CONV,AP_SAT>", "wrong", 0)
    bad = WrongModeBackend(tmp_path)
    bad._models = backend._models  # the compiled catalogue: no second compile
    mism = compare_outputs({"y": (case.tensors["y"].values, case.tensors["y"].fmt)},
                           bad.run(case))
    assert [m.tensor for m in mism] == ["y"] and mism[0].kind == "values"
    report = run_suite(bad, ops=["requantize.ap_fixed"], examples=30,
                       extra_strategies=bad.suite_extras().strategies)
    assert [e.status for e in report.entries] == ["fail"]  # the suite catches it too


def test_unmappable_ops_are_named() -> None:
    from refq.golden.cases_program import _lowered, subprogram

    program, _ = _lowered(8)
    attn = subprogram(program, ("blocks.0.attn.q.bnc",), "q")
    with pytest.raises(Unmappable, match="zero point after half_even"):
        map_program(attn)
    ln = subprogram(program, ("blocks.0.norm1.n",), "ln")
    with pytest.raises(Unmappable, match=r"layernorm\.refq"):
        map_program(ln)


def test_hls4ml_types_have_no_wrap_sm() -> None:
    """hls4ml limitation (docs/backends/hls4ml.md): 'AP_WRAP_SM' parses to 'WRSM'."""
    from hls4ml.model.types import SaturationMode

    with pytest.raises(KeyError, match="WRSM"):
        SaturationMode.from_string("AP_WRAP_SM")


def _nnet_dir() -> Path:
    spec = importlib.util.find_spec("hls4ml")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "templates/vivado"


def _dump(tmp: Path, body: str) -> list[int]:
    src = tmp / "dump.cpp"
    src.write_text(body)
    exe = tmp / "dump"
    d = _nnet_dir()
    subprocess.run(["g++", "-O1", "-std=c++14", "-w", f"-I{d}", f"-I{d / 'ap_types'}",
                    f"-I{d / 'nnet_utils'}", str(src), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    return [int(v) for v in out.split()]


def _raw(t: ApType, values: list[int]) -> list[int]:
    return [v - (1 << t.width) if t.signed and v >> (t.width - 1) else v for v in values]


def test_tables_equal_hls4ml_cpp(tmp_path: Path) -> None:
    """The exp / 1/x / 1/√x tables refq pins equal those hls4ml's own init functions compute
    (g++, this machine's libm)."""
    for impl, p in softmax_catalogue().items():
        t = p.types
        if impl == "legacy":
            ne, ni = len(p.exp_table), len(p.inv_table)
            body = ('#include <cstdio>\n#include "nnet_activation.h"\nstruct cfg : '
                    f"nnet::activ_config {{}};\nint main() {{ static cfg::table_t e[{ne}]"
                    f", v[{ni}]; nnet::init_exp_table_legacy<cfg, {ne}>"
                    f"(e); nnet::init_invert_table_legacy<cfg, {ni}>(v); for (auto &x :"
                    " e) std::printf(\"%llu\\n\", (unsigned long long)x.range().to_uint64()); for "
                    "(auto &x : v) std::printf(\"%llu\\n\", (unsigned long long)x.range()"
                    ".to_uint64()); }\n")
            vals = _dump(tmp_path, body)
            tt = t["exp_table_type"]
            assert tt.name == "ap_fixed<18,8,AP_TRN,AP_WRAP>"  # nnet::activ_config::table_t
            assert _raw(tt, vals[:ne]) == list(p.exp_table), impl
            assert _raw(tt, vals[ne:]) == list(p.inv_table), impl
            continue
        cfg = (f"struct cfg : nnet::activ_config {{ static const unsigned exp_table_size = "
               f"{len(p.exp_table)}; static const unsigned inv_table_size = {len(p.inv_table)};"
               f" static constexpr float exp_scale = 1.0; typedef {t['exp_table_type'].name} "
               f"exp_table_t; typedef {t['inv_table_type'].name} inv_table_t; }};")
        index_t = t["inp_norm_type"].name if impl == "stable" else t["in_type"].name
        body = (f'#include <cstdio>\n#include "nnet_activation.h"\n{cfg}\nint main() {{\n'
                f"  static cfg::exp_table_t e[{len(p.exp_table)}]; static cfg::inv_table_t "
                f"v[{len(p.inv_table)}];\n"
                f"  nnet::init_exp_table<{index_t}, cfg>(e, {str(impl == 'stable').lower()});\n"
                f"  nnet::init_invert_table<{t['inv_inp_type'].name}, cfg>(v);\n"
                f"  for (auto &x : e) std::printf(\"%llu\\n\", (unsigned long long)x.range()"
                f".to_uint64());\n"
                f"  for (auto &x : v) std::printf(\"%llu\\n\", (unsigned long long)x.range()"
                f".to_uint64());\n}}\n")
        vals = _dump(tmp_path, body)
        ne = len(p.exp_table)
        assert _raw(t["exp_table_type"], vals[:ne]) == list(p.exp_table), impl
        assert _raw(t["inv_table_type"], vals[ne:]) == list(p.inv_table), impl
    ln = layernorm_catalogue()
    tt = ln.types["table_type"]
    body = ('#include <cstdio>\n#include "nnet_layernorm.h"\nstruct cfg : nnet::layernorm_config '
            f"{{ typedef {tt.name} table_t; static const unsigned table_size = {len(ln.table)}; "
            "};\nint main() { static cfg::table_t t[cfg::table_size]; "
            "nnet::init_invert_sqr_table<cfg, cfg::table_size>(t); for (auto &x : t) "
            "std::printf(\"%llu\\n\", (unsigned long long)x.range().to_uint64()); }\n")
    assert _raw(tt, _dump(tmp_path, body)) == list(ln.table)

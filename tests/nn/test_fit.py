"""Does data fit a model (refq.nn.fit) and the colour rule of load_image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from refq.errors import SpecError
from refq.nn.data import ImageDataError, load_image
from refq.nn.fit import calib_eval_split, class_map


def test_class_map_by_name_and_position() -> None:
    names = ["zebra", "ant", "cat"]
    # by name: folder order (sorted) is not output order
    assert class_map(["ant", "zebra"], names, 3, data="d", model="m") == [1, 0]
    with pytest.raises(SpecError) as e:
        class_map(["ant", "dog"], names, 3, data="DIR", model="MODEL")
    msg = str(e.value)
    assert "DIR" in msg and "MODEL" in msg and "dog" in msg and "zebra, ant, cat" in msg
    assert class_map(["x", "y"], names, 3, data="d", model="m", by="position") == [0, 1]
    # no names: only one folder per output is unambiguous
    assert class_map(["a", "b", "c"], None, 3, data="d", model="m") == [0, 1, 2]
    with pytest.raises(SpecError, match=r"has 2 classes .* 3 outputs without class names"):
        class_map(["a", "b"], None, 3, data="d", model="m")
    with pytest.raises(SpecError, match="has 4 classes"):
        class_map(list("abcd"), None, 3, data="d", model="m", by="position")
    with pytest.raises(SpecError, match="labels: expected"):
        class_map(["a"], None, 1, data="d", model="m", by="name")


def test_colour_image_refused_for_one_channel(tmp_path: Path) -> None:
    colour = np.zeros((4, 4, 3), np.uint8)
    colour[..., 0] = 200
    Image.fromarray(colour).save(tmp_path / "c.png")
    with pytest.raises(ImageDataError, match=r"c\.png: a colour image \(mode RGB"):
        load_image(tmp_path / "c.png", "L")
    assert np.asarray(load_image(tmp_path / "c.png")).shape == (4, 4, 3)  # RGB is fine
    grey = np.repeat(np.arange(16, dtype=np.uint8).reshape(4, 4, 1) * 16, 3, axis=2)
    Image.fromarray(grey).save(tmp_path / "g.png")  # RGB file, grey content: lossless
    np.testing.assert_array_equal(np.asarray(load_image(tmp_path / "g.png", "L")),
                                  grey[..., 0], strict=True)
    pal = Image.fromarray(colour).convert("P")
    pal.save(tmp_path / "p.png")
    with pytest.raises(ImageDataError, match="mode P"):
        load_image(tmp_path / "p.png", "L")


def test_split() -> None:
    cal, ev = calib_eval_split(10, 3, seed=0)
    assert len(cal) == 3 and len(ev) == 7 and not set(cal) & set(ev)
    assert sorted([*cal, *ev]) == list(range(10))
    np.testing.assert_array_equal(np.concatenate([cal, ev]),
                                  np.random.default_rng(0).permutation(10), strict=False)
    cal, ev = calib_eval_split(4, 8, seed=1, limit=2)  # all images calibrate; 2 evaluated
    assert len(cal) == 4 and len(ev) == 2
    with pytest.raises(SpecError):
        calib_eval_split(4, 0, seed=0)

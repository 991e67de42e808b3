"""Does an image folder fit a model, and which images calibrate and which are evaluated.

:func:`class_map` maps the folder's classes to the model's outputs. When the model names
its classes (the bundled digits, a checkpoint folder's labels) every folder class must be
one of them and is mapped by name. When it does not (a timm ImageNet config), the folder
must have one class per output, and the sorted folder names map to outputs 0, 1, ... in
order (the ImageNet convention of sorted synset folders). ``by="position"`` asks for that
order mapping explicitly (e.g. ImageNet synset folders and a checkpoint whose labels are
readable names). Anything else is refused, naming the folder's and the model's classes:
a label guessed wrong gives a silently wrong accuracy.

:func:`check_channels`: a colour image cannot feed a one-channel model (the loader refuses
it too, :func:`refq.nn.data.load_image`); this checks the first image of every class up
front so the refusal comes before any work.

:func:`calib_eval_split`: the calibration / evaluation split of ``refq eval`` and
``refq sweep``: the folder shuffled with ``seed``, the first ``calib`` images calibrate,
the rest (all images when the folder holds no more than ``calib``) are evaluated, at most
``limit`` of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from refq.errors import SpecError
from refq.nn.data import ImageDataError, load_image

BY = ("auto", "position")


def _some(names: Sequence[str], n: int = 8) -> str:
    shown = ", ".join(names[:n])
    return shown + (f", … ({len(names)} in all)" if len(names) > n else "")


def class_map(folder_classes: Sequence[str], class_names: Sequence[str] | None,
              num_classes: int, *, data: str, model: str, by: str = "auto") -> list[int]:
    """Output index of each folder class (in the folder's sorted order).

    ``data`` and ``model`` name the two sides in errors. SpecError when they do not fit
    (see the module docstring).
    """
    if by not in BY:
        raise SpecError(f"labels: expected one of {', '.join(BY)}, got {by!r}")
    folder = list(folder_classes)
    if by == "position" or class_names is None:
        if by == "position" and len(folder) <= num_classes:
            return list(range(len(folder)))
        if len(folder) == num_classes:
            return list(range(num_classes))
        raise SpecError(
            f"data {data} has {len(folder)} classes ({_some(folder)}) but model {model} has "
            f"{num_classes} outputs" + ("" if by == "position" else
            " without class names, so which output is which folder cannot be told: give one "
            "class folder per output (sorted as the outputs), or --labels position to map "
            "the sorted folders to outputs 0, 1, ..."))
    names = list(class_names)
    index = {n: i for i, n in enumerate(names)}
    unknown = [c for c in folder if c not in index]
    if unknown:
        raise SpecError(f"data {data}: class folders {_some(unknown)} are not classes of "
                        f"model {model} ({_some(names)}); --labels position maps the "
                        "sorted folders to outputs 0, 1, ... instead")
    return [index[c] for c in folder]


def check_channels(samples: Sequence[tuple[Path, int]], in_chans: int, *, data: str,
                   model: str) -> None:
    """SpecError if ``in_chans`` is 1 and the first image of some class (``samples`` are
    (path, class) pairs, as :attr:`ImageFolder.samples`) is a colour image (its channels
    differ), naming the data, the image and the model."""
    if in_chans != 1:
        return
    seen: set[int] = set()
    for path, label in samples:
        if label in seen:
            continue
        seen.add(label)
        try:
            load_image(path, "L")
        except ImageDataError as e:
            raise SpecError(f"data {data} does not fit model {model} (1 input channel): "
                            f"{e}") from None


def calib_eval_split(n: int, calib: int, seed: int, limit: int | None = None,
                     ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(calibration indices, evaluation indices) into a folder of ``n`` images."""
    if n < 1 or calib < 1 or (limit is not None and limit < 1):
        raise SpecError(f"split: need n, calib, limit >= 1, got {n}, {calib}, {limit}")
    order = np.random.default_rng(seed).permutation(n).astype(np.int64)
    k = min(calib, n)
    rest = order[k:] if n > k else order
    return order[:k], rest[:limit] if limit is not None else rest


__all__ = ["BY", "calib_eval_split", "check_channels", "class_map"]

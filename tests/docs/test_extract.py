"""The extractor finds exactly the commands a reader would type."""

from __future__ import annotations

from pathlib import Path

from .extract import blocks, commands, untagged_commands

PAGE = """# A page

```bash
refq golden list        # every case
refq golden generate --out g \\
    --only 'softmax.*'
# a comment line
for s in 0 1; do
  echo $s
done
```

```console
$ refq --version
refq 0.1.0
```

```text
refq golden export DIR --format hex|bin|c
```

```
refq eval --int
```

Indented, after a blank line:

    python tools/bench/gemm.py

- a list item
    refq continues the item, not code
"""


def _page(tmp_path: Path) -> Path:
    (tmp_path / "docs").mkdir()
    p = tmp_path / "docs" / "page.md"
    p.write_text(PAGE)
    return p


def test_commands_are_split_joined_and_grouped(tmp_path: Path) -> None:
    found = [c for b in blocks(_page(tmp_path), tmp_path) for c in commands(b)]
    assert [(c.line, c.text) for c in found] == [
        (4, "refq golden list        # every case"),
        (5, "refq golden generate --out g --only 'softmax.*'"),
        (8, "for s in 0 1; do\necho $s\ndone"),
        (14, "refq --version"),
    ]
    assert {c.block for c in found} == {"docs/page.md:3", "docs/page.md:13"}


def test_commands_outside_shell_blocks_are_found(tmp_path: Path) -> None:
    found = untagged_commands(_page(tmp_path), tmp_path)
    assert found == [(23, "refq eval --int"), (28, "python tools/bench/gemm.py")]

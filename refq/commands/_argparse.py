"""The ``refq`` argument parser: options are spelled in full, and an unknown option is an
error that names the closest real ones.

argparse by default accepts any unambiguous prefix of an option (``--int`` for
``--integer``). refq turns that off (``allow_abbrev=False`` on every parser and subparser):
a prefix that is unique today can become ambiguous, or start meaning another option, when an
option is added, and a script would silently change meaning. Instead every unknown option —
a typo, an abbreviation — stops the command with ``did you mean …?``.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Sequence
from typing import Any, NoReturn


class RefqArgumentParser(argparse.ArgumentParser):
    """ArgumentParser without prefix matching (subparsers inherit the class)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)


def _chosen_parser(parser: argparse.ArgumentParser, args: argparse.Namespace
                   ) -> argparse.ArgumentParser:
    """The innermost (sub)parser that ``args`` went through (``refq golden export``)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            chosen = getattr(args, action.dest, None)
            if chosen in action.choices:
                return _chosen_parser(action.choices[chosen], args)
    return parser


def option_strings(parser: argparse.ArgumentParser) -> list[str]:
    return [s for a in parser._actions for s in a.option_strings]


def suggest(unknown: str, known: Sequence[str]) -> list[str]:
    """Close option names for ``unknown`` (its text before any ``=``): the options it is a
    prefix of, else the closest by difflib's ratio (at least 0.7, within 0.1 of the best)."""
    word = unknown.split("=", 1)[0]
    longs = [k for k in known if k.startswith("--")]
    prefixed = [k for k in longs if k.startswith(word) and word.startswith("--")]
    if prefixed:
        return prefixed[:3]
    scores = sorted(((difflib.SequenceMatcher(None, word, k).ratio(), k) for k in known),
                    reverse=True)
    best = scores[0][0] if scores else 0.0
    return [k for r, k in scores[:3] if r >= max(0.7, best - 0.1)]


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None
               ) -> argparse.Namespace:
    """``parser.parse_args(argv)``, but unrecognized arguments are reported by the
    subcommand's parser with suggestions (exit status 2, like argparse)."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        _unknown(_chosen_parser(parser, args), extra)
    return args


def _unknown(parser: argparse.ArgumentParser, extra: list[str]) -> NoReturn:
    known = option_strings(parser)
    hints = []
    for word in extra:
        if word.startswith("-"):
            close = suggest(word, known)
            hints.append(f"{word} (did you mean {' or '.join(close)}?)" if close else word)
        else:
            hints.append(word)
    parser.error(f"unrecognized arguments: {' '.join(hints)}; options are spelled in full "
                 f"(see {parser.prog} --help)")


__all__ = ["RefqArgumentParser", "option_strings", "parse_args", "suggest"]

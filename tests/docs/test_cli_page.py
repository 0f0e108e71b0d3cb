"""docs/cli.md documents every option of every ``losslens`` command."""

from __future__ import annotations

import argparse
from pathlib import Path

from napari_losslens.cli import build_parser

CLI_PAGE = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_every_option_is_on_the_cli_page():
    text = CLI_PAGE.read_text(encoding="utf-8")
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    missing = []
    for command, subparser in sub.choices.items():
        assert f"losslens {command}" in text
        for action in subparser._actions:
            for opt in action.option_strings:
                if opt not in ("-h", "--help") and f"`{opt}" not in text:
                    missing.append(f"{command} {opt}")
    assert not missing, missing

"""``parkbazaar``: one console command, a subcommand for each process.

Each subcommand module exposes ``register(subparsers)``, which adds its
parser and sets ``func`` to a handler ``(args) -> exit code``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# The modules that add subcommands, in the order ``--help`` lists them.
COMMAND_MODULES = (
    "parkbazaar.demo_cli",
    "parkbazaar.ingest_cli",
    "parkbazaar.api_cli",
    "parkbazaar.token_cli",
    "parkbazaar.broker_cli",
    "parkbazaar.gateway_cli",
    "parkbazaar.layout_cli",
    "parkbazaar.lorawan_cli",
    "parkbazaar.simulate_cli",
    "parkbazaar.vision_cli",
    "parkbazaar.forecast_cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="parkbazaar",
        description="Live occupancy of parking lots and produce bazaars.",
    )
    parser.add_argument("--config", metavar="FILE", help="YAML config file (or PARKBAZAAR_CONFIG)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())

"""Placeholder: replaced by the module that owns this subcommand."""

import argparse


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    return None

"""The ``parkbazaar`` command, and only the command: ``cli.py`` dispatches to one
``*_cli.py`` module a subcommand group, which parses arguments and calls library
code (occupancy, gateway, ingest, dashboard_api, simulators, and ``stack`` for
the local stack); ``clikit.py`` holds what they share. Nothing imports this
package but its own entry point."""

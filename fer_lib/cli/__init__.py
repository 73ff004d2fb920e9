"""The `fer` command line.

- `commands`: the parser and every subcommand but predict (`main` is the console entry point)
- `predict`: `fer predict`, on photos, folders, videos or a camera
- `arguments`: argument types shared by the subcommands
"""

from fer_lib.cli.commands import SEARCH_SPACES, build_parser, main

__all__ = ["SEARCH_SPACES", "build_parser", "main"]

"""The `fer` command line.

- `commands`: the parser and every subcommand but train and predict (`main` is the console entry point)
- `train`: `fer train`, its options and the run it starts or resumes
- `predict`: `fer predict`, on photos, folders, videos or a camera
- `shared`: what several subcommands print or take (the demo banner, the tracking options)
- `arguments`: argument types shared by the subcommands
"""

from fer_lib.cli.commands import SEARCH_SPACES, build_parser, main

__all__ = ["SEARCH_SPACES", "build_parser", "main"]

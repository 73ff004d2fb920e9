"""What several `fer` subcommands share: the banner of generated demo data and the tracking options."""

from __future__ import annotations

import argparse

DEMO_BANNER = "*** No dataset found: using GENERATED DEMO DATA (synthetic faces). Metrics say nothing about real faces. ***"


def add_tracking_options(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--no-tensorboard", dest="tensorboard", action="store_false",
                        help=f"do not write TensorBoard logs of {what} (written by default in its folder's tensorboard/; "
                             "watch with tensorboard --logdir runs/ or reports/)")
    parser.add_argument("--mlflow", nargs="?", const="default", default=None, metavar="URI",
                        help=f"log {what} to MLflow (pip install -e '.[tracking]'): the tracking URI, else $FER_MLFLOW_URI, "
                             "else sqlite:///runs/mlflow.db (mlflow ui --backend-store-uri sqlite:///runs/mlflow.db); "
                             "FER_MLFLOW_URI alone turns it on")


def tracking_uri(args) -> str | None:
    """The MLflow URI asked for, checked to be usable before anything starts."""
    from fer_lib.training.mlflow_tracking import require_mlflow, resolve_uri

    uri = resolve_uri(args.mlflow)
    if uri:
        require_mlflow()
    return uri

"""Experiment records (docs/results/*.json) and every page figure built from them.

    python scripts/results_table.py record runs/kd60 --preset fer_cnn_long --teacher ensemble_cpu_trio \\
        --control fer_cnn_long --finding distillation --conclusion "The teacher gained ..."
    python scripts/results_table.py record-ensemble ens.keras --members runs/a runs/b --member-records a b \\
        --metrics ens/metrics.json --label pair
    python scripts/results_table.py table     # rewrite the generated parts of README.md and docs/ (fer records render)
    python scripts/results_table.py check     # exit 1 if any of them is out of date (fer records check)

The tool is fer_lib.records (fer_lib/records/commands.py says what each command does); this entry
stays for the Makefile, the docs and the closing notes that call it.
"""

from __future__ import annotations

import sys

from fer_lib.records.commands import main

if __name__ == "__main__":
    sys.exit(main())

"""Stage 6, the records: experiment results kept as data in docs/ and the pages rendered from them.

- `ferplus`: the FER+ runs' page (docs/ferplus.md), the README's FER+ headline and the
  cross-label table (docs/benchmarks/cross_label.json, written by `record_cross_label`)

scripts/results_table.py records runs and renders the FER2013 pages.
"""

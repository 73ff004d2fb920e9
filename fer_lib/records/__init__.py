"""Stage 6, the records: experiment results kept as data in docs/ and the pages rendered from them.

- `locations`: where the records, the benchmark files and the generated pages live; the section markers
- `reading`: loading records and what each says about itself (recipe, overrides, runs, teachers)
- `naming`: a record's name computed from its recipe
- `recording`: writing a record of a training run, an ensemble, a pipeline run or a derived model
- `cells`: the pieces of every page (percentages, the recipe in words, a training cell)
- `headline`: the README's headline table and quick-start figures
- `experiments`: docs/experiments.md, whole
- `training_sections`, `inference_sections`, `gpu_sections`: the marked sections of docs/training.md,
  docs/inference.md and docs/gpu.md, from docs/benchmarks/
- `ferplus`: the FER+ runs' page (docs/ferplus.md), the README's FER+ headline and the
  cross-label table (docs/benchmarks/cross_label.json, written by `record_cross_label`)
- `pages`: every generated page at once; what is out of date
- `commands`: `fer records check|render|show NAME` and `python scripts/results_table.py`
"""

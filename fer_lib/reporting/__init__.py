"""Reports: the four notebooks run in order, and what they show.

- `steps`: the pipeline's steps declared once: each notebook, what it reads and what it writes
- `pipeline`: running the notebooks with papermill, HTML reports, the landing page (`fer pipeline`)
- `notebook`: what every notebook does first (set-up, run folder, data or demo faces)
- `figures`: the notebooks' figures and tables
"""

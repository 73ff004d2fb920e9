"""fer_lib: facial expression recognition on 48x48 grayscale faces (FER2013's 7 emotions, FER+'s 8).

The packages follow the pipeline: `data` (datasets, preprocessing, demo faces), `models`
(architectures, layers, saving), `training` (recipes, runs, tuning), `evaluation`
(predictions, metrics, rebalancing, calibration), `inference` (faces in photos, videos and
cameras; exports), `reporting` (the notebooks' pipeline and figures), `records` (the experiment
records and the pages rendered from them) and `cli` (the `fer` command). `paths`, `labels`,
`errors`, `artifacts` and `backend` are shared by all of them.
"""

from fer_lib.labels import EMOTIONS, FERPLUS_EMOTIONS, NUM_CLASSES
from fer_lib.version import __version__

__all__ = ["EMOTIONS", "FERPLUS_EMOTIONS", "NUM_CLASSES", "__version__", "predict_expression"]


def __getattr__(name):
    # Imported lazily: inference pulls in Keras and OpenCV, which `fer --help` should not pay for.
    if name == "predict_expression":
        from fer_lib.inference.photos import predict_expression

        return predict_expression
    raise AttributeError(f"module 'fer_lib' has no attribute {name!r}")

"""fer_lib: facial expression recognition on 48x48 grayscale faces (FER2013)."""

from fer_lib.labels import EMOTIONS, NUM_CLASSES

__version__ = "0.1.0"
__all__ = ["EMOTIONS", "NUM_CLASSES", "__version__", "predict_expression"]


def __getattr__(name):
    # Imported lazily: inference pulls in Keras and OpenCV, which `fer --help` should not pay for.
    if name == "predict_expression":
        from fer_lib.inference import predict_expression

        return predict_expression
    raise AttributeError(f"module 'fer_lib' has no attribute {name!r}")

"""The emotions models predict, in label order, and the face size models take.

FER2013's seven emotions keep the dataset's order (CSV `emotion` 0-6); FER+ adds contempt
as an eighth, so a FER+ model's first seven outputs mean what a FER2013 model's do.
"""

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES = len(EMOTIONS)
FERPLUS_EMOTIONS = (*EMOTIONS, "contempt")
IMAGE_SIZE = 48
INPUT_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)  # one 48x48 grayscale face, pixels 0-255


def classes_for(num_outputs: int) -> tuple[str, ...]:
    """The class list of a model with `num_outputs` outputs that recorded none (7: FER2013, 8: FER+)."""
    if num_outputs == len(EMOTIONS):
        return EMOTIONS
    if num_outputs == len(FERPLUS_EMOTIONS):
        return FERPLUS_EMOTIONS
    raise ValueError(f"a model with {num_outputs} outputs names no known class list; expected 7 (FER2013) or 8 (FER+)")

"""The seven FER2013 emotions, in the dataset's label order (CSV `emotion` 0-6)."""

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES = len(EMOTIONS)
IMAGE_SIZE = 48

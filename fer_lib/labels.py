"""The seven FER2013 emotions, in the dataset's label order (CSV `emotion` 0-6), and the face size models take."""

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES = len(EMOTIONS)
IMAGE_SIZE = 48
INPUT_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)  # one 48x48 grayscale face, pixels 0-255

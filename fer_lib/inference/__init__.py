"""Stage 5, inference: a trained model applied to photos, videos and a camera.

- `photos`: `predict_expression`, decoding inputs, batched classification of faces
- `detection`: finding faces (YuNet, MTCNN or Haar) and framing them as FER2013 does
- `verification`: MTCNN's O-Net as a second opinion on YuNet's faces
- `alignment`: turning a tilted face so that its eyes are level before the crop
- `drawing`: faces drawn on their image (boxes, emotions, detection scores)
- `video`: video sampling, per-frame results, annotated mp4, the webcam loop
- `live_window`: the live webcam window (OpenCV GUI or Tk)
- `export`: ONNX and TFLite exports, checked against the Keras model; its steps `conversion` (the request,
  the inference graph, the converters), `parity` (the check against Keras) and `exported` (running the files)
"""

from fer_lib.lazy import package_attributes

EXPORTS = {
    "ImageInput": "fer_lib.inference.photos",
    "DEFAULT_MODEL_PATH": "fer_lib.inference.photos",
    "CROP_MAX_SIDE": "fer_lib.inference.photos",
    "CROP_MAX_ASPECT": "fer_lib.inference.photos",
    "PREDICT_BATCH_SIZE": "fer_lib.inference.photos",
    "IMAGES_PER_CHUNK": "fer_lib.inference.photos",
    "ImageResult": "fer_lib.inference.photos",
    "DecodedImage": "fer_lib.inference.photos",
    "load_model_or_default": "fer_lib.inference.photos",
    "decode_image": "fer_lib.inference.photos",
    "face_boxes": "fer_lib.inference.photos",
    "face_input": "fer_lib.inference.photos",
    "classify_faces": "fer_lib.inference.photos",
    "face_record": "fer_lib.inference.photos",
    "box_list": "fer_lib.inference.photos",
    "check_box": "fer_lib.inference.photos",
    "classify_decoded": "fer_lib.inference.photos",
    "classify_images": "fer_lib.inference.photos",
    "predict_expression": "fer_lib.inference.photos",
    "draw_faces": "fer_lib.inference.drawing",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = package_attributes(__name__, EXPORTS)

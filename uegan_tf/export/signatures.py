"""The served interface: SavedModel signature, input and output names.

Shared by the SavedModel writer, the TF Serving warm-up requests, the
converters and the checks (`export/client.py`, standalone, repeats them).
See `savedmodel.py` for what each signature computes.
"""

SERVING_DEFAULT = "serving_default"
BYTES_SIGNATURE = "serve_bytes"
FLOAT_SIGNATURE = "serve_float"
FIXED_SIGNATURE = "serve_tflite"
IMAGES_INPUT = "images"
BYTES_INPUT = "image_bytes"
FLOAT_INPUT = "image"
IMAGES_OUTPUT = "stylized"
BYTES_OUTPUT = "png_bytes"

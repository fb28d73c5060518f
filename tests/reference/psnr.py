"""scikit-image's PSNR of one 8-bit image file against another.

usage: psnr.py TRUE TEST [DECODED.npy]
prints JSON {"psnr": peak_signal_noise_ratio(true, test, data_range=255), "skimage_version": ...};
with DECODED.npy, also saves the TEST pixels as scikit-image decoded them (JPEG decoders differ in the
last bit). Identical images would give infinity, which JSON cannot hold, so the script fails on them.
"""
import json
import math
import sys

import numpy as np
import skimage
import skimage.io
from skimage.metrics import peak_signal_noise_ratio

true, test = (skimage.io.imread(path) for path in sys.argv[1:3])
for path, image in zip(sys.argv[1:3], (true, test)):
    if image.dtype != np.uint8:
        sys.exit(f"{path}: expected 8-bit data, got {image.dtype}")
if len(sys.argv) > 3:
    np.save(sys.argv[3], test)
psnr = peak_signal_noise_ratio(true, test, data_range=255)
if not math.isfinite(psnr):
    sys.exit(f"the images are identical (psnr {psnr}): compare images that differ")
print(json.dumps({"psnr": float(psnr), "skimage_version": skimage.__version__}))

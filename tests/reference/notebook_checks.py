"""What the lessons' tagged cells must print, computed independently with numpy, scikit-image, tensorly.

usage: notebook_checks.py CACHE_DIR
prints JSON {notebook: {check: [{"pattern": regex, "values": [...], "tolerance": t}]}}: in the stdout of
the cell tagged `check:<check>` (a chapter fence ```rust,check=<check>), `pattern` must match and its
groups, read as numbers, equal `values` to within `tolerance` (absolute; chosen from the precision the
cell prints with). `cargo xtask notebooks --execute` compares; every tag needs an entry and every entry
a tagged cell, so a check cannot vanish unnoticed.
"""
import importlib.util
import json
import os
import sys

import numpy as np
import skimage.io
import tensorly as tl
from skimage.metrics import peak_signal_noise_ratio
from tensorly.decomposition import tucker


def expect(pattern, *values, tolerance=0.0):
    return {"pattern": pattern, "values": [float(v) for v in values], "tolerance": tolerance}


def matrices_and_flops():
    m, n, p = 3, 4, 5
    b, d = 128, 768
    factorized = [expect(rf"rank\s+{r}:\s+(\d+) FLOPs, ([\d.]+) of dense",
                         2 * b * r * (d + d), 2 * b * r * (d + d) / (2 * b * d * d), tolerance=0.0051)
                  for r in range(64, 769, 64)]
    attention = []
    for s in [64, 256, 1024, 4096]:
        projections, mixing = 8 * s * d * d, 4 * s * s * d
        total = projections + mixing
        attention.append(expect(rf"s =\s+{s}: projections\s+([\d.]+)% of\s+([\d.]+) GFLOPs",
                                100 * projections / total, total / 1e9, tolerance=0.051))
    return {
        "flops-by-hand": [expect(r"counted FLOPs = (\d+)", 2 * m * n * p),
                          expect(r"2mnp\s+= (\d+)", 2 * m * n * p)],
        "factorized": factorized + [expect(r"break-even rank = ([\d.]+)", d * d / (d + d))],
        "attention": attention,
    }


def svd_on_images(cache):
    photo = skimage.io.imread(os.path.join(cache, "samples", "astronaut.png")).astype(np.float64)
    height, width, channels = photo.shape
    svds = [np.linalg.svd(photo[:, :, c], full_matrices=False) for c in range(channels)]
    original = np.clip(np.round(photo), 0, 255).astype(np.uint8)
    ranks = []
    for k in [5, 20, 50]:
        layers = [(u[:, :k] * s[:k]) @ vt[:k] for u, s, vt in svds]
        approx = np.clip(np.round(np.stack(layers, axis=2)), 0, 255).astype(np.uint8)
        psnr = peak_signal_noise_ratio(original, approx, data_range=255)
        ratio = height * width / (k * (height + width + 1))
        ranks.append(expect(rf"rank\s+{k}: storage ratio\s+([\d.]+)x, PSNR ([\d.]+) dB",
                            ratio, psnr, tolerance=0.0051))
    red = svds[0][1]
    p = red / red.sum()
    p = p[p > 0]
    energy = np.cumsum(red**2) / np.sum(red**2)
    spectrum = [expect(r"effective rank of the red channel: ([\d.]+)", np.exp(-(p * np.log(p)).sum()),
                       tolerance=0.051)]
    for threshold in [0.9, 0.99, 0.999]:
        rank = int(np.argmax(energy >= threshold - 1e-12)) + 1
        spectrum.append(expect(rf"rank for {threshold * 100:.1f}% of the energy: (\d+)", rank))
    return {
        "photo": [expect(r"(\d+) x (\d+) pixels, (\d+) channels", height, width, channels)],
        "ranks": ranks,
        "spectrum": spectrum,
    }


def smooth_tensor():
    """The tensor lesson 03 builds with `Array3::from_shape_fn`: keep the two formulas identical."""
    i, j, k = np.meshgrid(np.arange(12), np.arange(10), np.arange(8), indexing="ij")
    return np.sin(0.3 * i + 0.2 * j) * np.cos(0.25 * k) + 0.1 * np.cos(i * j * 0.05 + k)


def tucker_lesson():
    shape = [2, 3, 4]
    unfold = [expect(rf"mode {mode}: \((\d+), (\d+)\)", shape[mode], np.prod(shape) // shape[mode])
              for mode in range(3)]
    x = smooth_tensor()
    norm = np.linalg.norm(x)
    (core, factors) = tucker(x, rank=[3, 3, 3], init="svd", n_iter_max=0)
    hosvd = np.linalg.norm(x - tl.tucker_to_tensor((core, factors))) / norm
    (core, factors), errors = tucker(x, rank=[3, 3, 3], init="svd", n_iter_max=100, tol=1e-10,
                                     return_errors=True)
    hooi = np.linalg.norm(x - tl.tucker_to_tensor((core, factors))) / norm
    table = []
    for r in [1, 8, 32, 64, 128, 256]:
        params = 768 * r + r * r + r * 768
        table.append(expect(rf"(?m)^\s*{r}\s+(\d+)\s+([\d.]+)x$", params, 768 * 768 / params,
                            tolerance=0.051))
    design = [expect(rf"{name}: (\d+) configurations", (2**layers - 1) * (2**4 - 1) * 8 + 1)
              for name, layers in [("BART-base encoder", 6), ("BART-base, both stacks", 12),
                                   ("LLaMA-7B", 32)]]
    return {
        "unfold": unfold,
        "smooth-tensor": [expect(r"HOSVD relative error ([\d.]+)", hosvd, tolerance=0.0000051),
                          expect(r"HOOI\s+relative error ([\d.]+)", hooi, tolerance=0.0000051)],
        "tucker2-table": table,
        "design-space": design,
    }


def later_lessons(cache):
    """Lessons 04 on keep their checks in lesson_checks/NN.py, each with `checks(cache)` returning
    {notebook: {check: [expect(...)]}}."""
    folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lesson_checks")
    merged = {}
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".py"):
            continue
        spec = importlib.util.spec_from_file_location(f"lesson_checks_{name[:-3]}",
                                                      os.path.join(folder, name))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        merged.update(module.checks(cache))
    return merged


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(json.dumps({
        "01-matrices-and-flops": matrices_and_flops(),
        "02-svd-on-images": svd_on_images(sys.argv[1]),
        "03-tucker": tucker_lesson(),
        **later_lessons(sys.argv[1]),
    }, indent=1))


if __name__ == "__main__":
    main()

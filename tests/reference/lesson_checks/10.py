"""Lesson 10, the design space of Tucker-2 compression: the tagged cells' numbers from numpy and
tensorly (the cosine sweep on MiniLM needs the Rust model and is asserted in the notebook itself)."""
import numpy as np
import tensorly as tl
from tensorly.decomposition import tucker

from notebook_checks import expect


def stack():
    """The 24×16×4 tensor the chapter builds with `Array3::from_shape_fn`: keep the formulas identical."""
    i, j, k = np.meshgrid(np.arange(24), np.arange(16), np.arange(4), indexing="ij")
    return np.sin(0.3 * i + 0.2 * j + 0.5 * k) + 0.1 * np.cos(0.05 * i * j + k)


def tucker2_stack():
    x = stack()
    norm = np.linalg.norm(x)
    core, factors = tucker(x, rank=[3, 3, 4], init="svd", n_iter_max=0)
    hosvd = np.linalg.norm(x - tl.tucker_to_tensor((core, factors))) / norm
    core, factors = tucker(x, rank=[3, 3, 4], init="svd", n_iter_max=100, tol=1e-10)
    hooi = np.linalg.norm(x - tl.tucker_to_tensor((core, factors))) / norm
    return [
        expect(r"by hand \(HOSVD\): relative error ([\d.]+), (\d+) numbers", hosvd,
               (24 + 16) * 3 + 4 * 3 * 3, tolerance=0.0000051),
        expect(r"library HOOI:\s+relative error ([\d.]+)", hooi, tolerance=0.0000051),
        expect(r"dense:\s+(\d+) numbers", 4 * 24 * 16),
    ]


def group_params():
    d, k = 384, 24
    dense = k * d * d
    checks = []
    for r in [1, 16, 64, 128, 192]:
        shared = 2 * d * r + k * r * r
        checks.append(expect(rf"rank\s+{r}: shared\s+(\d+), separate SVDs\s+(\d+), dense (\d+), kept ([\d.]+)",
                             shared, k * r * 2 * d, dense, shared / dense, tolerance=0.000051))
    useful = max(r for r in range(1, d + 1) if 2 * d * r + k * r * r < dense)
    checks.append(expect(r"largest rank that still saves: (\d+)", useful))
    return checks


def space_size():
    def size(layers, tensors, ranks):
        return (2**layers - 1) * (2**tensors - 1) * ranks + 1
    checks = [expect(r"MiniLM, ranks 1 and 16: \|S\| = (\d+)", size(6, 4, 2))]
    for layers, tensors, ranks in [(6, 4, 8), (12, 4, 8), (24, 4, 8), (24, 7, 8)]:
        checks.append(expect(rf"L =\s+{layers}, T = {tensors}, R = {ranks}: \|S\| = (\d+)",
                             size(layers, tensors, ranks)))
    checks.append(expect(r"point (\d+): r16 blocks=0,1,2,3,4,5", size(6, 4, 2) - 1))
    return checks


def checks(cache):
    return {"10-design-space": {
        "tucker2-stack": tucker2_stack(),
        "group-params": group_params(),
        "space-size": space_size(),
    }}

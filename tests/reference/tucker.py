"""tensorly's Tucker decompositions of INPUT.npy: HOSVD and HOOI (`tucker(init="svd")`).

usage: tucker.py INPUT.npy RANKS TOL N_ITER_MAX    (RANKS comma-separated, e.g. 4,3,5)
writes, next to INPUT.npy: hosvd_core.npy, hosvd_factor_N.npy (one per mode), hosvd_reconstruction.npy,
hooi_reconstruction.npy; prints JSON with the versions, HOOI's relative error after each iteration
(`return_errors`), its fit and the HOSVD core's norm.
"""
import json
import os
import sys

import numpy as np
import tensorly as tl
from tensorly.decomposition import tucker

path, ranks, tol, n_iter_max = sys.argv[1], [int(r) for r in sys.argv[2].split(",")], float(sys.argv[3]), int(sys.argv[4])
directory = os.path.dirname(path)
x = np.load(path)

# With n_iter_max=0 the HOOI loop never runs and tucker returns its init="svd" start: the HOSVD.
(core, factors), _ = tucker(x, rank=ranks, init="svd", n_iter_max=0, return_errors=True)
np.save(f"{directory}/hosvd_core.npy", core)
for mode, factor in enumerate(factors):
    np.save(f"{directory}/hosvd_factor_{mode}.npy", factor)
np.save(f"{directory}/hosvd_reconstruction.npy", tl.tucker_to_tensor((core, factors)))

# random_state only matters where a rank exceeds what an unfolding can give: tensorly pads at random.
(core, factors), errors = tucker(
    x, rank=ranks, init="svd", tol=tol, n_iter_max=n_iter_max, return_errors=True, random_state=0
)
np.save(f"{directory}/hooi_reconstruction.npy", tl.tucker_to_tensor((core, factors)))

print(json.dumps({
    "tensorly": tl.__version__,
    "numpy": np.__version__,
    "dtype": str(x.dtype),
    "hosvd_core_norm": float(np.linalg.norm(np.load(f"{directory}/hosvd_core.npy"))),
    "relative_errors": [float(e) for e in errors],
    "iterations": len(errors),
    "fit": 1.0 - float(errors[-1]),
}))

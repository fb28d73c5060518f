"""numpy's SVD of DIR/a.npy: singular values and reconstructions, full and truncated.

usage: svd.py DIR RANK [RANK ...]
writes DIR/s.npy, DIR/full.npy (U diag(s) Vt) and DIR/rank_K.npy; prints JSON with numpy's version.
"""
import json
import sys

import numpy as np

directory, ranks = sys.argv[1], [int(r) for r in sys.argv[2:]]
a = np.load(f"{directory}/a.npy")
u, s, vt = np.linalg.svd(a, full_matrices=False)
np.save(f"{directory}/s.npy", s)
np.save(f"{directory}/full.npy", (u * s) @ vt)
for k in ranks:
    np.save(f"{directory}/rank_{k}.npy", (u[:, :k] * s[:k]) @ vt[:k])
print(json.dumps({"numpy": np.__version__, "dtype": str(a.dtype)}))

"""The reference half of `cargo xtask bench math`: times numpy, scikit-learn and tensorly on the inputs
the Rust half saved in DIR, with the settings it recorded in DIR/rust.json; writes DIR/python.json."""
import json
import statistics
import sys
import time

import numpy as np
import sklearn
import tensorly as tl
from sklearn.utils.extmath import randomized_svd
from tensorly.decomposition import tucker
from threadpoolctl import threadpool_info


def median_seconds(repeats, run):
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


directory = sys.argv[1]
settings = json.load(open(f"{directory}/rust.json"))
square = np.load(f"{directory}/square.npy")
tall = np.load(f"{directory}/tall.npy")
tensor = np.load(f"{directory}/tensor.npy")

rank = settings["rsvd_rank"]
rsvd_args = dict(
    n_components=rank,
    n_oversamples=settings["rsvd_oversampling"],
    n_iter=settings["rsvd_power_iterations"],
    random_state=0,
)


def rsvd_error(seed):
    u, s, vt = randomized_svd(tall, **{**rsvd_args, "random_state": seed})
    return np.linalg.norm(tall - (u * s) @ vt) / np.linalg.norm(tall)


rsvd_error_mean = statistics.mean(rsvd_error(seed) for seed in range(settings["rsvd_seeds"]))

ranks = settings["hooi_ranks"]
tucker_args = dict(rank=ranks, init="svd", tol=settings["hooi_tolerance"], n_iter_max=100)
(core, factors), errors = tucker(tensor, return_errors=True, **tucker_args)

report = {
    "numpy": np.__version__,
    "scikit-learn": sklearn.__version__,
    "tensorly": tl.__version__,
    "blas": [{k: info.get(k) for k in ("internal_api", "num_threads", "architecture")} for info in threadpool_info()],
    "svd_768x768_s": median_seconds(5, lambda: np.linalg.svd(square, full_matrices=False)),
    "svd_3072x768_s": median_seconds(3, lambda: np.linalg.svd(tall, full_matrices=False)),
    "rsvd_3072x768_s": median_seconds(5, lambda: randomized_svd(tall, **rsvd_args)),
    "rsvd_relative_error": float(rsvd_error_mean),
    "hooi_s": median_seconds(3, lambda: tucker(tensor, **tucker_args)),
    "hooi_relative_error": float(errors[-1]),
    "hooi_iterations": len(errors),
}
json.dump(report, open(f"{directory}/python.json", "w"), indent=2)
print(json.dumps(report))

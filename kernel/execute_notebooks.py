"""Runs notebooks headless on the "Rust (Lowrank)" kernel; `cargo xtask notebooks --execute` calls it.

usage: execute_notebooks.py OUT_DIR NOTEBOOK...

Each notebook runs in a fresh kernel whose working folder is the notebook's own folder. The executed
copy goes to OUT_DIR/<name>.ipynb (never over the source) with nbclient's per-cell timing in
cell.metadata.execution, even when a cell fails; OUT_DIR/status.json records, per notebook, the
kernel start and total seconds and the error that stopped it, if any. Judging outputs (errors,
panics) and reporting is xtask's job. Exits 0 unless this script itself is misused.
"""

import asyncio
import atexit
import json
import os
import sys
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

KERNEL = "lowrank-rust"
# A cold kernel compiles the lab crate before it answers; a cell may train or compress a model.
STARTUP_TIMEOUT_S = 1800
CELL_TIMEOUT_S = 1800


async def run(path, out_dir):
    name = os.path.splitext(os.path.basename(path))[0]
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name=KERNEL,
        timeout=CELL_TIMEOUT_S,
        startup_timeout=STARTUP_TIMEOUT_S,
        resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}},
    )
    status = {"notebook": path, "name": name, "kernel_start_s": None, "error": None}
    start = time.monotonic()
    try:
        async with client.async_setup_kernel():
            status["kernel_start_s"] = time.monotonic() - start
            for index, cell in enumerate(nb.cells):
                await client.async_execute_cell(
                    cell, index, execution_count=client.code_cells_executed + 1
                )
    except CellExecutionError:
        # evcxr's error replies carry no ename/evalue; xtask reads the cell's error outputs instead.
        status["error"] = f"cell {index + 1} failed"
    except Exception as error:  # a timeout or a dead kernel stops this notebook, not the others
        status["error"] = f"{type(error).__name__}: {error}"
    finally:
        # nbclient leaves an exit hook behind when the kernel dies while starting; the hook would
        # fail at exit with a traceback that says nothing more.
        atexit.unregister(client._cleanup_kernel)
    status["seconds"] = time.monotonic() - start
    nbformat.write(nb, os.path.join(out_dir, f"{name}.ipynb"))
    return status


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out_dir, paths = sys.argv[1], sys.argv[2:]
    os.makedirs(out_dir, exist_ok=True)
    statuses = []
    for path in paths:
        print(f"notebook {path}: running", file=sys.stderr, flush=True)
        status = asyncio.run(run(path, out_dir))
        verdict = "stopped: " + status["error"] if status["error"] else "ran"
        print(f"notebook {path}: {verdict} ({status['seconds']:.1f}s)", file=sys.stderr, flush=True)
        statuses.append(status)
        # Written after each notebook, so an interrupted run still reports what it finished.
        with open(os.path.join(out_dir, "status.json"), "w") as file:
            json.dump(statuses, file, indent=1)


if __name__ == "__main__":
    main()

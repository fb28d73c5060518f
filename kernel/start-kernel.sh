#!/bin/sh
# Starts evcxr_jupyter ("$@") in a build folder of its own that outlives the kernel.
#
# evcxr caches compiled crates.io dependencies across kernels (`:cache`), but compiles the project's
# own crates (lowrank, models, …, lab) again in every new kernel: a minute on two cores. A build
# folder kept between kernels lets cargo reuse them. Each running kernel holds a lock on its folder
# (`flock` on fd 9, inherited by evcxr), so two notebooks open at once never share one.
builds="${LOWRANK_EVCXR_BUILDS:?the kernelspec sets LOWRANK_EVCXR_BUILDS}"
mkdir -p "$builds"
for slot in 0 1 2 3 4 5 6 7; do
    exec 9>"$builds/slot-$slot.lock"
    if flock -n 9; then
        mkdir -p "$builds/slot-$slot"
        export EVCXR_TMPDIR="$builds/slot-$slot"
        exec "$@"
    fi
done
# Eight kernels already run: this one builds in a temporary folder, as evcxr does by default.
exec 9>&-
exec "$@"

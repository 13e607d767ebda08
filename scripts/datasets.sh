# Sourced by scripts/test.sh and scripts/demo.sh: finds the public datasets
# (TRAILWATCH_DATASETS, which `make DATASETS=DIR` sets, else ../shared/datasets
# beside the checkout), exports TRAILWATCH_DATASETS, and stops with a message
# naming the folder when they are not there.
TRAILWATCH_DATASETS="${TRAILWATCH_DATASETS:-$root/../shared/datasets}"
if [ ! -d "$TRAILWATCH_DATASETS/stratus-detonations" ]; then
    echo "the public datasets are not at $TRAILWATCH_DATASETS (no stratus-detonations/ there):" \
        "put them at ../shared/datasets beside the checkout, or run make DATASETS=DIR ..." >&2
    exit 2
fi
TRAILWATCH_DATASETS="$(cd "$TRAILWATCH_DATASETS" && pwd)"
export TRAILWATCH_DATASETS

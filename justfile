# The original design's nine WorldRuntime recipes, each a thin call of the
# `world` CLI. Build first (./scripts/demo.sh or cargo build --release) and
# put the binary on PATH, or set WORLD_BIN.

set positional-arguments

world := env("WORLD_BIN", "world")

# Create new world
world-runtime-create *args:
    @echo "world-runtime-create: worlds (sandboxes) are not available in this build yet; they arrive with the substrate (issue 3)." >&2; exit 3

# Snapshot current state
world-runtime-snapshot *args:
    @echo "world-runtime-snapshot: snapshots of live worlds are not available in this build yet (issue 4)." >&2; exit 3

# Branch into 3 verses
world-runtime-branch *args:
    @echo "world-runtime-branch: branching live worlds is not available in this build yet (issue 4)." >&2; exit 3

# push_down operation: partition VERSE into nash/optimal/chaos (ledger)
world-runtime-push-down verse *args:
    {{world}} verse partition "$@"

# pull_up with oracle: resolve PARTITION (e.g. --winner v3, or --oracle weighted --seed 1)
world-runtime-pull-up partition *args:
    {{world}} verse resolve "$@"

# Performance metrics
world-runtime-metrics *args:
    {{world}} metrics "$@"

# List all entities
world-runtime-entities *args:
    {{world}} entities "$@"

# Branch history
world-runtime-branches *args:
    {{world}} branches "$@"

# Resolution history
world-runtime-resolutions *args:
    {{world}} resolutions "$@"

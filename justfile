# The original design's nine WorldRuntime recipes, each a thin call of the
# `world` CLI. Build first (./scripts/demo.sh or cargo build --release) and
# put the binary on PATH, or set WORLD_BIN. Extra arguments pass through.

set positional-arguments

world := env("WORLD_BIN", "world")

# Create new world
world-runtime-create *args:
    {{world}} create "$@"

# Snapshot current state: just world-runtime-snapshot WORLD [--name N]
world-runtime-snapshot *args:
    {{world}} snapshot "$@"

# Branch into 3 verses' worlds: just world-runtime-branch SNAPSHOT_OR_WORLD
world-runtime-branch source *args:
    {{world}} branch "$@" --count 3

# push_down operation: just world-runtime-push-down WORLD (nash/optimal/chaos)
world-runtime-push-down *args:
    {{world}} push-down "$@"

# pull_up with oracle: just world-runtime-pull-up PARTITION [--oracle score --lowest | --oracle explicit --winner V]
world-runtime-pull-up *args:
    {{world}} pull-up "$@"

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

//! Python that runs inside worlds for the demos (see `python/README.md`):
//! embedded here and sent to a session as one cell each.

/// The iterated routing game (Pigou, Braess) with selfish, optimal and
/// random strategies; prints `WORLD_SCORE {json}` from `report()`.
pub const ROUTING_GAME: &str = include_str!("../python/routing_game.py");

/// The original design's three-agent chromatic walk; every step prints
/// `WORLD_STEP {json}` with its trit and the running GF(3) sum.
pub const CHROMATIC_WALK: &str = include_str!("../python/chromatic_walk.py");

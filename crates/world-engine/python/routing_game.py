# WorldRuntime demo game: an iterated non-atomic routing game played by N
# agents, run INSIDE a world's persistent Python session.
#
# Contract (see README.md in this directory): the engine executes this whole
# file once in a session (exec into the session namespace, where __name__ is
# "__main__"), then calls setup(...) before push_down, and evolve(...) /
# report() in every verse. All state lives in the module global _RG, so it
# survives between snippets and is carried into forked (branched) sessions.
# Randomness comes only from the module-level `random` functions, which the
# runtime reseeds with WORLD_SEED in every branched session, so a verse's
# run is reproducible from its seed.
#
# Standard library only (Python >= 3.8). Every name this file defines at
# top level is public API or starts with _rg / _RG, so it can share one
# namespace with chromatic_walk.py.

import json
import os
import random
import time

DEFAULT_AGENTS = 1000
DEFAULT_ROUNDS = 50

# strategy name (and aliases) -> canonical strategy
_RG_STRATEGIES = {
    "selfish": "selfish", "nash": "selfish", "best_response": "selfish",
    "cooperative": "optimal", "optimal": "optimal", "optimum": "optimal",
    "social": "optimal",
    "random": "random", "chaos": "random", "uniform": "random",
}
# Tolerance for "strictly better": moves that gain less than this are ties
# and are not taken (so dynamics stop instead of cycling on float noise).
_RG_EPS = 1e-12

_RG = {}  # the game state; see setup()


# ---------------------------------------------------------------- networks

def _rg_network(game, p):
    """Edges (name, latency kind, parameter) and paths (name, edge indices).

    Latency kinds: "pow" l(x) = x**param, "const" l(x) = param.
    """
    if game == "pigou":
        edges = [("road1", "pow", p), ("road2", "const", 1.0)]
        paths = [("road1", (0,)), ("road2", (1,))]
    elif game == "braess":
        edges = [("s-v", "pow", 1.0), ("v-t", "const", 1.0),
                 ("s-w", "const", 1.0), ("w-t", "pow", 1.0),
                 ("v-w", "const", 0.0)]
        paths = [("s-v-t", (0, 1)), ("s-w-t", (2, 3)), ("s-v-w-t", (0, 4, 3))]
    else:
        raise ValueError("unknown game %r (expected 'pigou' or 'braess')" % (game,))
    return edges, paths


def _rg_latency_fns(edges):
    """Per edge: latency l(f) and total edge cost c(f) = f * l(f)."""
    lat, cost = [], []
    for _name, kind, a in edges:
        if kind == "pow":
            if a == 0:
                lat.append(lambda f: 1.0)
                cost.append(lambda f: f)
            elif a == 1:
                lat.append(lambda f: f)
                cost.append(lambda f: f * f)
            else:
                lat.append(lambda f, a=a: f ** a if f > 0 else 0.0)
                cost.append(lambda f, a=a: f ** (a + 1) if f > 0 else 0.0)
        else:
            lat.append(lambda f, a=a: a)
            cost.append(lambda f, a=a: a * f)
    return lat, cost


def exact_values(game="pigou", p=1):
    """Analytic values of the continuum (non-atomic) game, demand 1.

    Returns {game, p, nash, optimum, uniform, poa, wev, wev_abs} where
    nash is the cost of the (worst) Wardrop equilibrium, optimum the social
    optimum, uniform the cost when the flow is split evenly over the paths
    (the large-N limit of every agent picking a uniformly random path),
    poa = nash / optimum, wev = poa - 1, wev_abs = nash - optimum.
    Matches world_core::games and the table in shared/semantics.md.
    """
    game = str(game).lower()
    if game == "pigou":
        p = float(p)
        if p < 0:
            raise ValueError("p must be >= 0")
        if p == 0:
            nash = optimum = uniform = 1.0
        else:
            x = (1.0 / (p + 1.0)) ** (1.0 / p)
            nash = 1.0
            optimum = x ** (p + 1.0) + 1.0 - x
            uniform = 0.5 * 0.5 ** p + 0.5
        p_out = int(p) if p == int(p) else p
    elif game == "braess":
        nash, optimum, uniform = 2.0, 1.5, 14.0 / 9.0
        p_out = 1
    else:
        raise ValueError("unknown game %r (expected 'pigou' or 'braess')" % (game,))
    poa = nash / optimum
    return {"game": game, "p": p_out, "nash": nash, "optimum": optimum,
            "uniform": uniform, "poa": poa, "wev": poa - 1.0,
            "wev_abs": nash - optimum}


# ------------------------------------------------------------------- setup

def setup(game="pigou", agents=DEFAULT_AGENTS, p=1, seed=None, init="random"):
    """Builds the game state in the module global _RG and returns game_summary().

    game: "pigou" (l1(x) = x**p, l2 = 1) or "braess" (p must stay 1).
    agents: N >= 1; each agent carries 1/N of the unit demand.
    p: Pigou's exponent (>= 0, int or float).
    seed: if not None, random.seed(seed) first (the runtime also reseeds
      `random` with WORLD_SEED in every branched session).
    init: initial paths: "random" (each agent uniformly at random) or an
      int k (every agent on path k).
    """
    game = str(game).lower()
    agents = int(agents)
    if agents < 1:
        raise ValueError("agents must be >= 1")
    if game == "braess" and float(p) != 1.0:
        raise ValueError("p applies to Pigou only; Braess uses l(x) = x (p = 1)")
    p = float(p)
    if p < 0:
        raise ValueError("p must be >= 0")
    if p == int(p):
        p = int(p)
    if seed is not None:
        random.seed(seed)
    edges, paths = _rg_network(game, p)
    lat, cost = _rg_latency_fns(edges)
    n_paths = len(paths)
    # path_edges[b] as sets for the deviation tables
    psets = [set(es) for _n, es in paths]
    # dev[a][b]: edges of b, each with 1 if the deviating agent adds its flow
    # there (edge not already on its current path a), else 0.
    dev = [[[(e, 0 if e in psets[a] else 1) for e in paths[b][1]]
            for b in range(n_paths)] for a in range(n_paths)]
    # moves[a][b]: (edges that gain the agent, edges that lose it)
    moves = [[(sorted(psets[b] - psets[a]), sorted(psets[a] - psets[b]))
              for b in range(n_paths)] for a in range(n_paths)]
    if init == "random":
        assign = [random.randrange(n_paths) for _ in range(agents)]
    else:
        k = int(init)
        if not 0 <= k < n_paths:
            raise ValueError("init path %d out of range" % k)
        assign = [k] * agents
    counts = [0] * n_paths
    for a in assign:
        counts[a] += 1
    _RG.clear()
    _RG.update({
        "game": game, "p": p, "agents": agents, "w": 1.0 / agents,
        "seed": seed, "edges": edges, "paths": paths, "lat": lat,
        "cost": cost, "dev": dev, "moves": moves,
        "edge_paths": [[b for b in range(n_paths) if e in psets[b]]
                       for e in range(len(edges))],
        "assign": assign, "counts": counts,
        "strategy": None, "rounds": 0, "rounds_run": 0, "converged": None,
        "switches": 0, "history": [], "elapsed_s": 0.0,
        "reported_cost": None,
    })
    return game_summary()


def _rg_state():
    if not _RG:
        raise RuntimeError("routing game not set up: call setup(game=..., agents=...) first")
    return _RG


def _rg_edge_flows(st, counts=None):
    counts = st["counts"] if counts is None else counts
    w = st["w"]
    return [w * sum(counts[b] for b in bs) for bs in st["edge_paths"]]


def _rg_social_cost(st, counts=None):
    f = _rg_edge_flows(st, counts)
    return sum(c(x) for c, x in zip(st["cost"], f))


def social_cost():
    """Average per-unit latency of the current flow (= total cost, demand 1)."""
    return _rg_social_cost(_rg_state())


def path_costs(counts=None):
    """Latency of every path under the current flow (or given path counts)."""
    st = _rg_state()
    f = _rg_edge_flows(st, counts)
    lat = st["lat"]
    return [sum(lat[e](f[e]) for e in es) for _n, es in st["paths"]]


def nash_regret(counts=None):
    """Largest latency an agent could save by switching path alone (>= 0).

    0 (up to float noise) exactly at a Nash equilibrium of the N-agent game.
    """
    st = _rg_state()
    counts = st["counts"] if counts is None else counts
    f = _rg_edge_flows(st, counts)
    best = 0.0
    for a in range(len(st["paths"])):
        if counts[a] == 0:
            continue
        costs = _rg_dev_costs(st, f, a)
        best = max(best, costs[a] - min(costs))
    return best


# --------------------------------------------------------------- dynamics

def _rg_dev_costs(st, f, a):
    """Latency an agent now on path a would pay on each path b (alone moving)."""
    lat, w = st["lat"], st["w"]
    return [sum(lat[e](f[e] + w * add) for e, add in row) for row in st["dev"][a]]


def _rg_dev_delta(st, f, a):
    """Change of total cost if one agent moves from path a to each path b."""
    cost, w = st["cost"], st["w"]
    out = []
    for gain, lose in st["moves"][a]:
        d = 0.0
        for e in gain:
            d += cost[e](f[e] + w) - cost[e](f[e])
        for e in lose:
            d += cost[e](f[e] - w) - cost[e](f[e])
        out.append(d)
    return out


def _rg_best_target(st, a, strategy):
    """The path an agent on path a moves to (a itself if no strict gain)."""
    f = _rg_edge_flows(st)
    if strategy == "selfish":
        vals = _rg_dev_costs(st, f, a)
        base = vals[a]
    else:
        vals = _rg_dev_delta(st, f, a)
        base = 0.0
    best, arg = base, a
    for b, v in enumerate(vals):  # lowest index wins ties
        if v < best - _RG_EPS:
            best, arg = v, b
    return arg


def _rg_best_response(st, rounds, strategy):
    """Iterated (marginal-cost) best response; stops early once stable."""
    assign, counts = st["assign"], st["counts"]
    n = st["agents"]
    n_paths = len(counts)
    order = list(range(n))
    shuffle = random.shuffle
    history = []
    switches = 0
    converged = False
    done = 0
    for _r in range(rounds):
        shuffle(order)
        cache = [None] * n_paths  # best target per current path, valid until a move
        moved = 0
        for i in order:
            a = assign[i]
            t = cache[a]
            if t is None:
                t = _rg_best_target(st, a, strategy)
                cache[a] = t
            if t != a:
                assign[i] = t
                counts[a] -= 1
                counts[t] += 1
                moved += 1
                cache = [None] * n_paths
        done += 1
        switches += moved
        history.append(_rg_social_cost(st))
        if moved == 0:  # a full round without a move: a fixed point
            converged = True
            break
    return history, done, switches, converged


def _rg_random(st, rounds):
    """Every agent picks a uniformly random path every round."""
    n = st["agents"]
    n_paths = len(st["paths"])
    idx = range(n_paths)
    history = []
    assign = st["assign"]
    for _r in range(rounds):
        assign = random.choices(idx, k=n)
        st["counts"][:] = [assign.count(b) for b in idx]
        history.append(_rg_social_cost(st))
    st["assign"] = assign
    return history, rounds, None, None


def evolve(strategy=None, rounds=DEFAULT_ROUNDS):
    """Plays `rounds` rounds of the game from the current state.

    "selfish" (aliases "nash", "best_response"): iterated best response;
      each round the agents, in a fresh random order, switch to their
      cheapest path given the others (strict gains only). Converges to a
      Nash equilibrium (Pigou cost 1, Braess 2, within ~1/N); stops early
      after a round without any switch.
    "optimal" ("cooperative", "optimum", "social"): the same with marginal
      cost: an agent switches when that lowers the total cost. Converges to
      the social optimum (Pigou p=1 3/4, Braess 3/2, within ~1/N^2).
    "random" ("chaos", "uniform"): every agent picks a uniformly random path
      every round; the verse's score is the mean cost over the rounds
      (-> 3/4 Pigou p=1, 14/9 Braess, plus O(1/N)).
    strategy=None: the session's global variable `strategy` if set (so the
      original design's snippet `strategy = 'selfish'; evolve()` works),
      else "selfish".
    Returns game_summary() (nothing is printed; report() prints).
    """
    st = _rg_state()
    if strategy is None:
        strategy = globals().get("strategy") or "selfish"
    key = _RG_STRATEGIES.get(str(strategy).lower())
    if key is None:
        raise ValueError("unknown strategy %r (expected one of %s)"
                         % (strategy, ", ".join(sorted(_RG_STRATEGIES))))
    rounds = int(rounds)
    if rounds < 1:
        raise ValueError("rounds must be >= 1")
    t0 = time.perf_counter()
    if key == "random":
        history, done, switches, converged = _rg_random(st, rounds)
    else:
        history, done, switches, converged = _rg_best_response(st, rounds, key)
    elapsed = time.perf_counter() - t0
    st.update({
        "strategy": key, "strategy_name": str(strategy), "rounds": rounds,
        "rounds_run": done, "switches": switches, "converged": converged,
        "history": history, "elapsed_s": elapsed,
    })
    return game_summary()


# ---------------------------------------------------------------- results

def _rg_round(x, nd=9):
    return float(round(x, nd))


def game_summary():
    """The report() dict, without printing it."""
    st = _rg_state()
    n = st["agents"]
    last = _rg_social_cost(st)
    hist = st["history"]
    mean = sum(hist) / len(hist) if hist else last
    # The verse's score: the time average for random play (it estimates the
    # uniform-random value), else the final (converged) flow's cost.
    score = mean if st["strategy"] == "random" else last
    exact = exact_values(st["game"], st["p"])
    return {
        "game": st["game"],
        "p": st["p"],
        "strategy": st["strategy"],
        "agents": n,
        "rounds": st["rounds"],
        "rounds_run": st["rounds_run"],
        "converged": st["converged"],
        "switches": st["switches"],
        "social_cost": _rg_round(score),
        "last_social_cost": _rg_round(last),
        "mean_social_cost": _rg_round(mean),
        "flows": {name: _rg_round(c / n) for (name, _e), c in zip(st["paths"], st["counts"])},
        "counts": list(st["counts"]),
        "path_costs": [_rg_round(c) for c in path_costs()],
        "nash_regret": _rg_round(nash_regret()),
        "exact": {k: _rg_round(exact[k]) for k in ("nash", "optimum", "uniform", "poa", "wev")},
        "elapsed_s": _rg_round(st["elapsed_s"], 6),
        "seed": st["seed"],
        "world_id": os.environ.get("WORLD_ID"),
        "world_seed": os.environ.get("WORLD_SEED"),
    }


def report():
    """Returns game_summary() and prints it as one line `WORLD_SCORE {json}`."""
    r = game_summary()
    print("WORLD_SCORE " + json.dumps(r, sort_keys=True, allow_nan=False), flush=True)
    return r


def play(game="pigou", strategy="selfish", agents=DEFAULT_AGENTS, rounds=DEFAULT_ROUNDS,
        p=1, seed=None):
    """setup + evolve + report in one call (a whole verse in one snippet)."""
    setup(game=game, agents=agents, p=p, seed=seed)
    evolve(strategy, rounds=rounds)
    return report()


def price_of_anarchy(nash_cost, optimum_cost):
    """poa = C_nash / C_opt (cost game) and wev = poa - 1, as in semantics.md."""
    poa = float(nash_cost) / float(optimum_cost)
    return {"poa": poa, "wev": poa - 1.0, "wev_abs": float(nash_cost) - float(optimum_cost)}

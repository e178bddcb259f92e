# WorldRuntime demo: the original design's three-agent "chromatic walk"
# across the verses of one push_down, run INSIDE worlds' Python sessions.
#
#   generator   trit +1  chaos verse    generate_proposals()
#   coordinator trit  0  optimal verse  coordinate_proposals(proposals)
#   validator   trit -1  nash verse     validate_proposals(proposals)
#
# The agents search the routing game (Pigou or Braess, N agents, as in
# routing_game.py) together: the generator proposes k flows (path counts) at
# random, some fresh, some mutations of what the walk has found so far; the
# coordinator ranks them by social cost; the validator recomputes them and
# checks the Nash condition (no agent gains by switching path alone), and
# keeps the proposal closest to equilibrium as the survivor that the next
# round's generator mutates. Over the rounds the walk finds a low-cost flow
# (-> optimum) and an equilibrium (-> Nash), and so estimates the price of
# anarchy.
#
# The three steps may run in three different processes (verses): every step
# returns a JSON-serialisable dict, prints it as one line `WORLD_STEP {json}`
# and the next step takes that dict (or its JSON, or the whole line) as its
# argument. The dict carries everything the walk needs: the game, the walk's
# findings and the GF(3) chain (the running sum of the trits of the steps
# taken), so the sum is 0 mod 3 after every full round whichever process ran
# which step. Steps out of order are rejected (ValueError).
#
# Randomness: only the generator draws, from the module-level `random`
# (reseeded per verse by the runtime with WORLD_SEED); the coordinator and
# the validator are deterministic. Standard library only; every top-level
# name is public API or starts with _cw / _CW, so this file can share one
# session namespace with routing_game.py (it does not need it).

import json
import os
import random
import time

_CW_ROLES = {
    # role: (trit, verse, position in a round)
    "generator": (1, "chaos", 0),
    "coordinator": (0, "optimal", 1),
    "validator": (-1, "nash", 2),
}
_CW_ORDER = ["generator", "coordinator", "validator"]
_CW_TOL = 1e-9  # Nash tolerance on an agent's latency saving
_CW_TRACE_MAX = 300

_CW = {}  # local state: config, chain (GF(3)), walk; see chromatic_setup()


# ---------------------------------------------------------------- the game

def _cw_network(game, p):
    """(path names, path edge lists, edge latencies (kind, param))."""
    if game == "pigou":
        return (["road1", "road2"], [[0], [1]], [("pow", p), ("const", 1.0)])
    if game == "braess":
        return (["s-v-t", "s-w-t", "s-v-w-t"], [[0, 1], [2, 3], [0, 4, 3]],
                [("pow", 1.0), ("const", 1.0), ("const", 1.0), ("pow", 1.0),
                 ("const", 0.0)])
    raise ValueError("unknown game %r (expected 'pigou' or 'braess')" % (game,))


def _cw_lat(kind, a, f):
    if kind == "const":
        return a
    if a == 0:
        return 1.0
    return f ** a if f > 0 else 0.0


def _cw_exact(game, p):
    if game == "braess":
        return {"nash": 2.0, "optimum": 1.5, "uniform": 14.0 / 9.0}
    p = float(p)
    if p == 0:
        return {"nash": 1.0, "optimum": 1.0, "uniform": 1.0}
    x = (1.0 / (p + 1.0)) ** (1.0 / p)
    return {"nash": 1.0, "optimum": x ** (p + 1.0) + 1.0 - x,
            "uniform": 0.5 * 0.5 ** p + 0.5}


class _CwGame:
    def __init__(self, cfg):
        self.game, self.p, self.n = cfg["game"], cfg["p"], cfg["agents"]
        self.names, self.paths, self.edges = _cw_network(self.game, self.p)
        self.w = 1.0 / self.n

    def edge_flows(self, counts):
        f = [0.0] * len(self.edges)
        for b, es in enumerate(self.paths):
            for e in es:
                f[e] += counts[b] * self.w
        return f

    def social_cost(self, counts):
        f = self.edge_flows(counts)
        return sum(x * _cw_lat(k, a, x) for (k, a), x in zip(self.edges, f))

    def regret(self, counts):
        """(largest latency saving of a lone switch, from path, to path)."""
        f = self.edge_flows(counts)
        best, frm, to = 0.0, None, None
        for a, ea in enumerate(self.paths):
            if counts[a] == 0:
                continue
            cur = sum(_cw_lat(*self.edges[e], f[e]) for e in ea)
            for b, eb in enumerate(self.paths):
                if b == a:
                    continue
                alt = sum(_cw_lat(*self.edges[e], f[e] + (0.0 if e in ea else self.w))
                          for e in eb)
                if cur - alt > best:
                    best, frm, to = cur - alt, a, b
        return best, frm, to

    def check(self, counts):
        """None if counts is a valid flow of this game, else the reason."""
        if not isinstance(counts, list) or len(counts) != len(self.paths):
            return "counts must be a list of %d integers" % len(self.paths)
        if any(not isinstance(c, int) or isinstance(c, bool) or c < 0 for c in counts):
            return "counts must be non-negative integers"
        if sum(counts) != self.n:
            return "counts sum to %d, not %d agents" % (sum(counts), self.n)
        return None


# ------------------------------------------------------------------ state

def chromatic_setup(game="pigou", agents=1000, p=1, k=6, seed=None):
    """Starts a new walk in this session: config, empty GF(3) chain, no findings.

    seed: if not None, random.seed(seed) (the generator's randomness).
    Returns the config dict.
    """
    game = str(game).lower()
    agents, k = int(agents), int(k)
    if agents < 1 or k < 1:
        raise ValueError("agents and k must be >= 1")
    p = float(p)
    if game == "braess" and p != 1.0:
        raise ValueError("p applies to Pigou only; Braess uses l(x) = x (p = 1)")
    if p < 0:
        raise ValueError("p must be >= 0")
    if p == int(p):
        p = int(p)
    _cw_network(game, p)  # validates the name
    if seed is not None:
        random.seed(seed)
    _CW.clear()
    _CW.update({
        "config": {"game": game, "p": p, "agents": agents, "k": k},
        "chain": {"sum": 0, "steps": 0, "round": 0, "round_trits": []},
        "walk": _cw_empty_walk(),
        "trace": [],
    })
    return dict(_CW["config"])


def _cw_empty_walk():
    return {"best": None, "survivor": None, "nash": None, "poa_estimate": None,
            "proposals_seen": 0, "nash_seen": 0}


def _cw_local():
    if not _CW:
        chromatic_setup()
    return _CW


def gf3_state():
    """This session's view of the walk's GF(3) chain.

    {sum (raw running sum of trits), sum_mod3, steps, round,
     rounds_completed, round_trits (this round so far), balanced
     (sum_mod3 == 0), next (the role expected next), trace (last steps)}.
    """
    st = _cw_local()
    out = _cw_gf3_public(st["chain"])
    out["trace"] = list(st["trace"])
    return out


def _cw_gf3_public(chain):
    rt = list(chain["round_trits"])
    done = chain["round"] if not rt else chain["round"] - 1
    return {"sum": chain["sum"], "sum_mod3": chain["sum"] % 3, "steps": chain["steps"],
            "round": chain["round"], "rounds_completed": done, "round_trits": rt,
            "balanced": chain["sum"] % 3 == 0, "next": _CW_ORDER[len(rt) % 3]}


def _cw_parse(x):
    """A step dict from a dict, a JSON string or a `WORLD_STEP {json}` line."""
    if isinstance(x, (bytes, bytearray)):
        x = x.decode()
    if isinstance(x, str):
        s = x.strip()
        if s.startswith("WORLD_STEP"):
            s = s[len("WORLD_STEP"):].strip()
        x = json.loads(s)
    return x


def _cw_begin(role, prev):
    """Adopts the chain/walk/config of the previous step (or the local ones),
    checks that `role` is the expected next step, and returns
    (config, chain, walk, proposals of prev or None)."""
    st = _cw_local()
    prev = _cw_parse(prev) if prev is not None else None
    proposals = None
    if isinstance(prev, dict) and "gf3" in prev:
        cfg = dict(prev["config"])
        g = prev["gf3"]
        chain = {"sum": int(g["sum"]), "steps": int(g["steps"]), "round": int(g["round"]),
                 "round_trits": [int(t) for t in g["round_trits"]]}
        walk = dict(prev["walk"])
        proposals = prev.get("proposals")
    else:
        cfg, walk = dict(st["config"]), dict(st["walk"])
        chain = dict(st["chain"], round_trits=list(st["chain"]["round_trits"]))
        if isinstance(prev, dict) and "proposals" in prev:
            proposals = prev["proposals"]
        elif prev is not None:
            proposals = prev
    pos = len(chain["round_trits"])
    want = _CW_ORDER[pos % 3]
    if want != role:
        raise ValueError(
            "chromatic walk out of order: %s called, but the %s is next (round %d, trits so far %s); "
            "pass the previous step's WORLD_STEP dict" % (role, want, chain["round"], chain["round_trits"]))
    return cfg, chain, walk, proposals


def _cw_finish(role, cfg, chain, walk, body, t0):
    """Adds the trit to the chain, stores the local view, prints WORLD_STEP."""
    trit, verse, _pos = _CW_ROLES[role]
    if role == "generator":
        chain["round"] += 1
        chain["round_trits"] = []
    chain["sum"] += trit
    chain["steps"] += 1
    chain["round_trits"].append(trit)
    trits_this_round = list(chain["round_trits"])
    complete = len(trits_this_round) == 3
    if complete:
        if chain["sum"] % 3 != 0:  # cannot happen given the order check
            raise AssertionError("GF(3) violated after round %d: sum %d"
                                 % (chain["round"], chain["sum"]))
        chain["round_trits"] = []  # the next step starts a new round
    gf3 = _cw_gf3_public(chain)
    gf3["round_complete"] = complete
    gf3["trits_this_round"] = trits_this_round
    out = {
        "agent": role, "trit": trit, "verse": verse,
        "round": chain["round"], "step": chain["steps"],
        "config": cfg,
        "paths": _cw_network(cfg["game"], cfg["p"])[0],
        "exact": {k: round(v, 9) for k, v in _cw_exact(cfg["game"], cfg["p"]).items()},
    }
    out.update(body)
    out["walk"] = walk
    out["gf3"] = gf3
    out["elapsed_s"] = round(time.perf_counter() - t0, 6)
    out["world_id"] = os.environ.get("WORLD_ID")
    # local view
    st = _cw_local()
    st["config"], st["walk"] = dict(cfg), dict(walk)
    st["chain"] = {"sum": chain["sum"], "steps": chain["steps"], "round": chain["round"],
                   "round_trits": list(chain["round_trits"])}
    st["trace"].append({"round": chain["round"], "agent": role, "trit": trit,
                        "sum": chain["sum"]})
    del st["trace"][:-_CW_TRACE_MAX]
    print("WORLD_STEP " + json.dumps(out, sort_keys=True, allow_nan=False), flush=True)
    return out


def _cw_prop(game, pid, counts, origin):
    return {"id": pid, "origin": origin, "counts": counts,
            "flows": [round(c / game.n, 9) for c in counts],
            "social_cost": round(game.social_cost(counts), 9)}


def _cw_proposals_in(proposals):
    if proposals is None:
        raise ValueError("no proposals given")
    if isinstance(proposals, dict):
        proposals = proposals.get("proposals", [])
    out = []
    for j, q in enumerate(proposals):
        if isinstance(q, dict):
            out.append(dict(q, id=q.get("id", "p%d" % j)))
        else:  # bare counts
            out.append({"id": "p%d" % j, "origin": "given", "counts": list(q)})
    return out


# ------------------------------------------------------------- the agents

def generate_proposals(k=None, previous=None):
    """Generator (+1, chaos verse): k random flows of the routing game.

    previous: the validator's step of the last round (dict, JSON or the
      WORLD_STEP line) to continue a walk across processes; None uses this
      session's own state (a fresh walk after chromatic_setup()).
    Proposal j: j % 3 == 0 fresh (random cut points of the N agents over
    the paths), 1 a mutation of the walk's survivor (closest to Nash so
    far), 2 a mutation of the walk's best (lowest cost so far); mutations
    move a random number of agents (1 .. N/2, log-uniform) from one used
    path to another. Round 1 has only fresh proposals.
    """
    t0 = time.perf_counter()
    cfg, chain, walk, _ = _cw_begin("generator", previous)
    if k is not None:
        cfg["k"] = int(k)
    game = _CwGame(cfg)
    n, n_paths = game.n, len(game.paths)
    rnd = chain["round"] + 1
    proposals = []
    for j in range(cfg["k"]):
        kind = ("fresh", "survivor", "best")[j % 3]
        base = walk.get(kind) if kind != "fresh" else None
        if base is None:
            cuts = sorted(random.randint(0, n) for _ in range(n_paths - 1))
            bounds = [0] + cuts + [n]
            counts = [bounds[i + 1] - bounds[i] for i in range(n_paths)]
            origin = "fresh"
        else:
            counts = list(base["counts"])
            used = [b for b in range(n_paths) if counts[b] > 0]
            a = random.choice(used)
            b = random.choice([x for x in range(n_paths) if x != a])
            m = max(1, int(n * 0.5 ** random.randint(1, 16)))
            m = min(m, counts[a])
            counts[a] -= m
            counts[b] += m
            origin = "mutate-" + kind
        proposals.append(_cw_prop(game, "r%dp%d" % (rnd, j), counts, origin))
    walk["proposals_seen"] = int(walk.get("proposals_seen", 0)) + len(proposals)
    return _cw_finish("generator", cfg, chain, walk, {"proposals": proposals}, t0)


def coordinate_proposals(proposals=None):
    """Coordinator (0, optimal verse): ranks the proposals by social cost.

    proposals: the generator's step (dict, JSON or WORLD_STEP line), or a
      bare list of proposals / path-count lists (then this session's chain
      is used). Deterministic. Output: proposals sorted by cost with rank
      and gap_to_optimum, `ranking` (ids), `best` (id); the walk's best
      flow so far is updated.
    """
    t0 = time.perf_counter()
    cfg, chain, walk, props = _cw_begin("coordinator", proposals)
    game = _CwGame(cfg)
    opt = _cw_exact(cfg["game"], cfg["p"])["optimum"]
    ranked = []
    for q in _cw_proposals_in(props):
        bad = game.check(q.get("counts"))
        cost = game.social_cost(q["counts"]) if bad is None else None
        ranked.append(dict(q, social_cost=None if cost is None else round(cost, 9),
                           well_formed=bad is None, problem=bad))
    ranked.sort(key=lambda q: (q["social_cost"] is None, q["social_cost"] or 0.0, q["id"]))
    for r, q in enumerate(ranked, 1):
        q["rank"] = r
        q["gap_to_optimum"] = None if q["social_cost"] is None else round(q["social_cost"] - opt, 9)
    best = ranked[0] if ranked and ranked[0]["social_cost"] is not None else None
    if best is not None and (walk.get("best") is None
                             or best["social_cost"] < walk["best"]["social_cost"]):
        walk["best"] = {"id": best["id"], "counts": best["counts"],
                        "social_cost": best["social_cost"]}
    _cw_update_poa(walk)
    body = {"proposals": ranked, "ranking": [q["id"] for q in ranked],
            "best": None if best is None else best["id"]}
    return _cw_finish("coordinator", cfg, chain, walk, body, t0)


def validate_proposals(proposals=None):
    """Validator (-1, nash verse): checks each proposal against the Nash condition.

    For each proposal it recomputes the social cost (cost_ok: the claimed
    cost matches), checks the flow (well_formed: N agents over the paths)
    and computes the regret: the largest latency one agent saves by
    switching path alone (`deviation` from -> to); is_nash = regret <= 1e-9.
    The survivor (lowest regret, then cost, then id) seeds the next round;
    the walk keeps the worst (costliest) equilibrium found and estimates
    poa = nash cost / best cost. Deterministic. Completes the round: the
    GF(3) sum is then 0 mod 3.
    """
    t0 = time.perf_counter()
    cfg, chain, walk, props = _cw_begin("validator", proposals)
    game = _CwGame(cfg)
    verdicts = []
    for q in _cw_proposals_in(props):
        bad = game.check(q.get("counts"))
        v = dict(q, well_formed=bad is None, problem=bad)
        if bad is None:
            cost = game.social_cost(q["counts"])
            reg, frm, to = game.regret(q["counts"])
            claimed = q.get("social_cost")
            v.update({
                "social_cost": round(cost, 9),
                "cost_ok": claimed is None or abs(float(claimed) - cost) <= 1e-6,
                "regret": round(reg, 12),
                "deviation": None if frm is None else {"from": game.names[frm], "to": game.names[to]},
                "is_nash": reg <= _CW_TOL,
            })
        else:
            v.update({"cost_ok": False, "regret": None, "deviation": None, "is_nash": False})
        verdicts.append(v)
    good = [v for v in verdicts if v["well_formed"]]
    good.sort(key=lambda v: (v["regret"], v["social_cost"], v["id"]))
    survivor = good[0] if good else None
    if survivor is not None and (walk.get("survivor") is None
                                 or survivor["regret"] <= walk["survivor"]["regret"]):
        walk["survivor"] = {"id": survivor["id"], "counts": survivor["counts"],
                            "regret": survivor["regret"], "social_cost": survivor["social_cost"]}
    nash = [v for v in verdicts if v.get("is_nash")]
    walk["nash_seen"] = int(walk.get("nash_seen", 0)) + len(nash)
    for v in nash:
        if walk.get("nash") is None or v["social_cost"] > walk["nash"]["social_cost"]:
            walk["nash"] = {"id": v["id"], "counts": v["counts"], "social_cost": v["social_cost"]}
    for v in good:  # the validator also sees costs: keep the walk's best honest
        if walk.get("best") is None or v["social_cost"] < walk["best"]["social_cost"]:
            walk["best"] = {"id": v["id"], "counts": v["counts"], "social_cost": v["social_cost"]}
    _cw_update_poa(walk)
    body = {"proposals": verdicts,
            "valid": [v["id"] for v in verdicts if v.get("is_nash")],
            "rejected": [v["id"] for v in verdicts if not v.get("is_nash")],
            "survivor": None if survivor is None else survivor["id"],
            "nash_found": bool(nash)}
    return _cw_finish("validator", cfg, chain, walk, body, t0)


def _cw_update_poa(walk):
    if walk.get("nash") and walk.get("best") and walk["best"]["social_cost"] > 0:
        walk["poa_estimate"] = round(walk["nash"]["social_cost"] / walk["best"]["social_cost"], 9)


# ------------------------------------------------------- in one process

def chromatic_round(previous=None, k=None):
    """generator -> coordinator -> validator in this session; returns the
    validator's step (pass it as `previous` to continue)."""
    g = generate_proposals(k=k, previous=previous)
    c = coordinate_proposals(g)
    return validate_proposals(c)


def run_walk(rounds=10, k=None):
    """`rounds` full rounds in this session; returns {rounds, walk, gf3, exact}."""
    last = None
    for _ in range(int(rounds)):
        last = chromatic_round(previous=last, k=k)
    st = _cw_local()
    return {"rounds": int(rounds), "config": dict(st["config"]), "walk": dict(st["walk"]),
            "gf3": _cw_gf3_public(st["chain"]),
            "exact": _cw_exact(st["config"]["game"], st["config"]["p"])}

"""Tests for routing_game.py (standard library unittest only).

Run: python3 -m unittest discover -s crates/world-engine/python -p 'test_*.py'
"""
import contextlib
import io
import json
import math
import os
import random
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import routing_game as rg  # noqa: E402

N = 1000
SEEDS = (1, 2, 3)


def quiet(fn, *a, **kw):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        r = fn(*a, **kw)
    return r, buf.getvalue()


def play(game, strategy, seed, agents=N, p=1, rounds=rg.DEFAULT_ROUNDS):
    rg.setup(game=game, agents=agents, p=p, seed=seed)
    return rg.evolve(strategy, rounds=rounds)


def splitmix64(seed, n):
    """As in shared/semantics.md: output n of SplitMix64 seeded with seed."""
    m = (1 << 64) - 1
    z = (seed + (n + 1) * 0x9E3779B97F4A7C15) & m
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
    return z ^ (z >> 31)


class ExactValues(unittest.TestCase):
    def test_table(self):
        e = rg.exact_values("pigou", 1)
        self.assertAlmostEqual(e["nash"], 1.0)
        self.assertAlmostEqual(e["optimum"], 0.75)
        self.assertAlmostEqual(e["uniform"], 0.75)
        self.assertAlmostEqual(e["poa"], 4 / 3)
        self.assertAlmostEqual(e["wev"], 1 / 3)
        e = rg.exact_values("pigou", 2)
        self.assertAlmostEqual(e["optimum"], 1 - 2 / (3 * math.sqrt(3)))
        self.assertAlmostEqual(e["poa"], 1.626, places=3)
        self.assertAlmostEqual(e["uniform"], 0.625)
        e = rg.exact_values("braess")
        self.assertEqual((e["nash"], e["optimum"]), (2.0, 1.5))
        self.assertAlmostEqual(e["uniform"], 14 / 9)
        self.assertAlmostEqual(e["poa"], 4 / 3)
        e = rg.exact_values("pigou", 0)
        self.assertEqual((e["nash"], e["optimum"], e["poa"]), (1.0, 1.0, 1.0))

    def test_bad_game(self):
        with self.assertRaises(ValueError):
            rg.exact_values("nope")


class Pigou(unittest.TestCase):
    def test_selfish_nash(self):
        for s in SEEDS:
            r = play("pigou", "selfish", s)
            self.assertLess(abs(r["social_cost"] - 1.0), 0.02, r)
            self.assertTrue(r["converged"])
            self.assertEqual(r["nash_regret"], 0.0)

    def test_optimal(self):
        for s in SEEDS:
            r = play("pigou", "optimal", s)
            self.assertLess(abs(r["social_cost"] - 0.75), 0.02, r)
            self.assertTrue(r["converged"])

    def test_cooperative_alias(self):
        self.assertEqual(play("pigou", "cooperative", 5)["social_cost"],
                         play("pigou", "optimal", 5)["social_cost"])

    def test_random(self):
        for s in SEEDS:
            r = play("pigou", "random", s)
            self.assertLess(abs(r["social_cost"] - 0.75), 0.03, r)
            self.assertEqual(r["rounds_run"], rg.DEFAULT_ROUNDS)

    def test_poa(self):
        nash = play("pigou", "selfish", 11)["social_cost"]
        opt = play("pigou", "optimal", 11)["social_cost"]
        self.assertLess(abs(nash / opt - 4 / 3), 0.03)
        self.assertLess(abs(rg.price_of_anarchy(nash, opt)["wev"] - 1 / 3), 0.03)

    def test_p2(self):
        e = rg.exact_values("pigou", 2)
        self.assertLess(abs(play("pigou", "selfish", 4, p=2)["social_cost"] - 1.0), 0.02)
        opt = play("pigou", "optimal", 4, p=2)["social_cost"]
        self.assertLess(abs(opt - e["optimum"]), 0.02)
        self.assertLess(abs(play("pigou", "random", 4, p=2)["social_cost"] - e["uniform"]), 0.03)


class Braess(unittest.TestCase):
    def test_selfish_nash(self):
        for s in SEEDS:
            r = play("braess", "selfish", s)
            self.assertLess(abs(r["social_cost"] - 2.0), 0.02, r)
            self.assertGreater(r["flows"]["s-v-w-t"], 0.98)
            self.assertEqual(r["nash_regret"], 0.0)

    def test_optimal(self):
        for s in SEEDS:
            r = play("braess", "optimal", s)
            self.assertLess(abs(r["social_cost"] - 1.5), 0.02, r)
            self.assertLess(r["flows"]["s-v-w-t"], 0.02)

    def test_random(self):
        for s in SEEDS:
            r = play("braess", "random", s)
            self.assertLess(abs(r["social_cost"] - 14 / 9), 0.03, r)

    def test_poa(self):
        nash = play("braess", "selfish", 12)["social_cost"]
        opt = play("braess", "optimal", 12)["social_cost"]
        self.assertLess(abs(nash / opt - 4 / 3), 0.03)

    def test_p_rejected(self):
        with self.assertRaises(ValueError):
            rg.setup("braess", 10, p=2)


class Mechanics(unittest.TestCase):
    def test_flows_and_counts_consistent(self):
        for game in ("pigou", "braess"):
            for strat in ("selfish", "optimal", "random"):
                r = play(game, strat, 3, agents=257)
                self.assertEqual(sum(r["counts"]), 257)
                self.assertAlmostEqual(sum(r["flows"].values()), 1.0, places=6)
                self.assertAlmostEqual(rg.social_cost(), r["last_social_cost"], places=6)

    def test_social_cost_is_mean_latency(self):
        rg.setup("braess", 300, seed=9)
        costs = rg.path_costs()
        counts = rg.game_summary()["counts"]
        mean_latency = sum(c * n for c, n in zip(costs, counts)) / 300
        self.assertAlmostEqual(rg.social_cost(), mean_latency, places=9)

    def test_reproducible(self):
        for game in ("pigou", "braess"):
            for strat in ("selfish", "optimal", "random"):
                a = play(game, strat, 42)
                b = play(game, strat, 42)
                for r in (a, b):
                    r.pop("elapsed_s")
                self.assertEqual(a, b)
        x = play("braess", "random", 42)["social_cost"]
        y = play("braess", "random", 43)["social_cost"]
        self.assertNotEqual(x, y)

    def test_reseed_after_setup_is_reproducible(self):
        # What the runtime does on branch: the state is copied, then
        # random.seed(WORLD_SEED) in the child.
        rg.setup("braess", N, seed=1)
        saved = (list(rg._RG["assign"]), list(rg._RG["counts"]))
        out = []
        for _ in range(2):
            rg._RG["assign"][:], rg._RG["counts"][:] = saved[0], saved[1]
            random.seed(splitmix64(1, 2))
            out.append(rg.evolve("random")["mean_social_cost"])
        self.assertEqual(out[0], out[1])

    def test_strategy_global_like_the_seed_snippet(self):
        rg.setup("pigou", N, seed=3)
        rg.strategy = "cooperative"
        try:
            r = rg.evolve()
        finally:
            del rg.strategy
        self.assertEqual(r["strategy"], "optimal")
        rg.setup("pigou", N, seed=3)
        self.assertEqual(rg.evolve()["strategy"], "selfish")

    def test_errors(self):
        rg._RG.clear()
        with self.assertRaises(RuntimeError):
            rg.evolve("selfish")
        with self.assertRaises(ValueError):
            rg.setup("nope")
        with self.assertRaises(ValueError):
            rg.setup("pigou", 0)
        rg.setup("pigou", 10)
        with self.assertRaises(ValueError):
            rg.evolve("greedy")
        with self.assertRaises(ValueError):
            rg.evolve("selfish", rounds=0)

    def test_speed(self):
        for game in ("pigou", "braess"):
            for strat in ("selfish", "optimal", "random"):
                rg.setup(game, N, seed=1)
                t = time.perf_counter()
                rg.evolve(strat)
                self.assertLess(time.perf_counter() - t, 1.0, (game, strat))


class ScoreLine(unittest.TestCase):
    def test_world_score_line(self):
        rg.setup("pigou", N, seed=8)
        rg.evolve("random")
        r, out = quiet(rg.report)
        lines = out.splitlines()
        self.assertEqual(len(lines), 1)
        self.assertTrue(lines[0].startswith("WORLD_SCORE {"))
        d = json.loads(lines[0][len("WORLD_SCORE "):])
        self.assertEqual(d, json.loads(json.dumps(r)))
        for k in ("game", "strategy", "agents", "rounds", "social_cost", "flows", "elapsed_s"):
            self.assertIn(k, d)
        self.assertEqual(d["strategy"], "random")
        self.assertEqual(d["agents"], N)
        self.assertAlmostEqual(d["social_cost"], d["mean_social_cost"])

    def test_play(self):
        r, out = quiet(rg.play, "braess", "selfish", agents=200, seed=1)
        self.assertTrue(out.startswith("WORLD_SCORE "))
        self.assertLess(abs(r["social_cost"] - 2.0), 0.02)


class Session(unittest.TestCase):
    """The engine's way: exec the files into one namespace, then snippets."""

    def test_exec_both_files_into_one_namespace(self):
        ns = {"__name__": "__main__"}
        for f in ("routing_game.py", "chromatic_walk.py"):
            with open(os.path.join(HERE, f)) as fh:
                exec(compile(fh.read(), f, "exec"), ns)
        exec("setup(game='pigou', agents=1000, seed=5)", ns)
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            exec("strategy = 'cooperative'; evolve(); r = report()", ns)
        self.assertLess(abs(ns["r"]["social_cost"] - 0.75), 0.02)
        self.assertTrue(buf.getvalue().startswith("WORLD_SCORE "))
        with contextlib.redirect_stdout(io.StringIO()):
            exec("g = generate_proposals()", ns)
        self.assertEqual(ns["gf3_state"]()["sum_mod3"], 1)
        # the routing game's state is untouched by the walk
        self.assertEqual(ns["game_summary"]()["strategy"], "optimal")

    @unittest.skipUnless(hasattr(os, "fork"), "needs fork")
    def test_forked_verses(self):
        """setup, then fork one child per verse, reseed as the runtime does."""
        root_seed = 0x6761795F636F6C6F
        self.assertEqual(splitmix64(root_seed, 0), 0xF061EBBC2CA74D78)
        rg.setup("braess", N, seed=root_seed)
        verses = [("nash", "selfish"), ("optimal", "cooperative"), ("chaos", "random"),
                  ("chaos-again", "random")]
        results = {}
        for i, (name, strat) in enumerate(verses):
            r_fd, w_fd = os.pipe()
            pid = os.fork()
            if pid == 0:  # child
                try:
                    os.close(r_fd)
                    random.seed(splitmix64(root_seed, min(i, 2)))
                    rg.evolve(strat)
                    os.write(w_fd, json.dumps(rg.game_summary()).encode())
                finally:
                    os._exit(0)
            os.close(w_fd)
            data = b""
            while True:
                chunk = os.read(r_fd, 65536)
                if not chunk:
                    break
                data += chunk
            os.close(r_fd)
            os.waitpid(pid, 0)
            results[name] = json.loads(data)
        self.assertLess(abs(results["nash"]["social_cost"] - 2.0), 0.02)
        self.assertLess(abs(results["optimal"]["social_cost"] - 1.5), 0.02)
        self.assertLess(abs(results["chaos"]["social_cost"] - 14 / 9), 0.03)
        self.assertEqual(results["chaos"]["social_cost"], results["chaos-again"]["social_cost"])
        poa = results["nash"]["social_cost"] / results["optimal"]["social_cost"]
        self.assertLess(abs(poa - 4 / 3), 0.03)
        # the parent's state did not move
        self.assertIsNone(rg.game_summary()["strategy"])


if __name__ == "__main__":
    unittest.main()

"""Tests for chromatic_walk.py (standard library unittest only).

Run: python3 -m unittest discover -s crates/world-engine/python -p 'test_*.py'
"""
import contextlib
import io
import json
import os
import random
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import chromatic_walk as cw  # noqa: E402


def quiet(fn, *a, **kw):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        r = fn(*a, **kw)
    return r, buf.getvalue()


def step_line(out):
    lines = out.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("WORLD_STEP {"), lines[0][:40]
    return lines[0]


def new_session():
    """A fresh namespace holding the file, as a world's session would."""
    ns = {"__name__": "__main__"}
    with open(os.path.join(HERE, "chromatic_walk.py")) as fh:
        exec(compile(fh.read(), "chromatic_walk.py", "exec"), ns)
    return ns


class Gf3(unittest.TestCase):
    def test_sum_after_every_step_and_round(self):
        cw.chromatic_setup("pigou", 1000, seed=1)
        last = None
        for rnd in range(1, 8):
            g, out = quiet(cw.generate_proposals, previous=last)
            self.assertEqual(json.loads(step_line(out)[len("WORLD_STEP "):]), g)
            self.assertEqual((g["agent"], g["trit"], g["verse"]), ("generator", 1, "chaos"))
            self.assertEqual(cw.gf3_state()["sum_mod3"], 1)
            self.assertFalse(cw.gf3_state()["balanced"])
            c, out = quiet(cw.coordinate_proposals, g)
            step_line(out)
            self.assertEqual((c["agent"], c["trit"], c["verse"]), ("coordinator", 0, "optimal"))
            self.assertEqual(cw.gf3_state()["sum_mod3"], 1)
            v, out = quiet(cw.validate_proposals, c)
            step_line(out)
            self.assertEqual((v["agent"], v["trit"], v["verse"]), ("validator", -1, "nash"))
            s = cw.gf3_state()
            self.assertEqual(s["sum_mod3"], 0)
            self.assertTrue(s["balanced"])
            self.assertEqual(s["rounds_completed"], rnd)
            self.assertEqual(s["steps"], 3 * rnd)
            self.assertEqual(v["gf3"]["trits_this_round"], [1, 0, -1])
            self.assertTrue(v["gf3"]["round_complete"])
            self.assertEqual(v["gf3"]["next"], "generator")
            last = v
        self.assertEqual([t["trit"] for t in cw.gf3_state()["trace"][-3:]], [1, 0, -1])

    def test_local_chain_without_passing_dicts(self):
        cw.chromatic_setup("braess", 300, seed=2)
        for _ in range(3):
            g, _o = quiet(cw.generate_proposals)
            c, _o = quiet(cw.coordinate_proposals, g["proposals"])  # bare list
            v, _o = quiet(cw.validate_proposals, [q["counts"] for q in c["proposals"]])
            self.assertEqual(cw.gf3_state()["sum_mod3"], 0)
        self.assertEqual(cw.gf3_state()["rounds_completed"], 3)

    def test_out_of_order_rejected(self):
        cw.chromatic_setup("pigou", 100, seed=3)
        with self.assertRaises(ValueError):
            quiet(cw.coordinate_proposals, [[50, 50]])
        with self.assertRaises(ValueError):
            quiet(cw.validate_proposals, [[50, 50]])
        g, _ = quiet(cw.generate_proposals)
        with self.assertRaises(ValueError):
            quiet(cw.generate_proposals)
        with self.assertRaises(ValueError):
            quiet(cw.validate_proposals, g)
        c, _ = quiet(cw.coordinate_proposals, g)
        with self.assertRaises(ValueError):
            quiet(cw.coordinate_proposals, c)  # c's chain wants the validator
        with self.assertRaises(ValueError):
            quiet(cw.generate_proposals, previous=c)
        v, _ = quiet(cw.validate_proposals, c)
        with self.assertRaises(ValueError):
            quiet(cw.coordinate_proposals, v)
        with self.assertRaises(ValueError):
            quiet(cw.validate_proposals, v)
        self.assertTrue(cw.gf3_state()["balanced"])

    def test_across_three_sessions(self):
        """Each agent in its own verse (namespace); only WORLD_STEP lines travel."""
        chaos, optimal, nash = new_session(), new_session(), new_session()
        for ns in (chaos, optimal, nash):
            ns["chromatic_setup"]("braess", 1000)
        random.seed(77)
        line = None
        for rnd in range(1, 6):
            _g, out = quiet(chaos["generate_proposals"], previous=line)
            _c, out = quiet(optimal["coordinate_proposals"], step_line(out))
            v, out = quiet(nash["validate_proposals"], step_line(out))
            line = step_line(out)
            self.assertEqual(v["gf3"]["sum"] % 3, 0)
            self.assertEqual(v["gf3"]["rounds_completed"], rnd)
            self.assertTrue(nash["gf3_state"]()["balanced"])
            # the chaos verse saw only its own (+1) step of this round
            self.assertEqual(chaos["gf3_state"]()["sum_mod3"], 1)
        # same seed in one session gives the same walk
        random.seed(77)
        cw.chromatic_setup("braess", 1000)
        r, _ = quiet(cw.run_walk, 5)
        self.assertEqual(r["walk"], v["walk"])

    def test_cells_with_json_string_literals(self):
        """The engine's way: cells that embed the previous line as a JSON string."""
        chaos, optimal, nash = new_session(), new_session(), new_session()
        chaos["random"].seed(5)
        line = None
        for _ in range(2):
            cell = "generate_proposals()" if line is None else \
                "generate_proposals(previous=%s)" % json.dumps(line)
            line = step_line(quiet(exec, cell, chaos)[1])
            line = step_line(quiet(exec, "coordinate_proposals(%s)" % json.dumps(line), optimal)[1])
            line = step_line(quiet(exec, "validate_proposals(%s)" % json.dumps(line), nash)[1])
            d = json.loads(line[len("WORLD_STEP "):])
            self.assertEqual(d["gf3"]["sum_mod3"], 0)
            self.assertTrue(d["gf3"]["balanced"])
        self.assertEqual(d["round"], 2)


class Agents(unittest.TestCase):
    def test_deterministic_given_seed(self):
        a = [quiet(cw.chromatic_setup, "braess", 500, seed=9), quiet(cw.run_walk, 6)[0]][1]
        b = [quiet(cw.chromatic_setup, "braess", 500, seed=9), quiet(cw.run_walk, 6)[0]][1]
        self.assertEqual(a, b)
        c = [quiet(cw.chromatic_setup, "braess", 500, seed=10), quiet(cw.run_walk, 6)[0]][1]
        self.assertNotEqual(a["walk"], c["walk"])

    def test_generator(self):
        cw.chromatic_setup("braess", 1000, k=9, seed=4)
        g, _ = quiet(cw.generate_proposals)
        self.assertEqual(len(g["proposals"]), 9)
        for q in g["proposals"]:
            self.assertEqual(sum(q["counts"]), 1000)
            self.assertTrue(all(c >= 0 for c in q["counts"]))
        self.assertEqual(g["paths"], ["s-v-t", "s-w-t", "s-v-w-t"])

    def test_coordinator_ranks_by_cost(self):
        cw.chromatic_setup("pigou", 100, seed=5)
        quiet(cw.generate_proposals)
        c, _ = quiet(cw.coordinate_proposals, [[100, 0], [50, 50], [0, 100], [70, 30]])
        costs = [q["social_cost"] for q in c["proposals"]]
        self.assertEqual(costs, sorted(costs))
        self.assertEqual(c["proposals"][0]["counts"], [50, 50])
        self.assertAlmostEqual(c["proposals"][0]["gap_to_optimum"], 0.0)
        self.assertEqual([q["rank"] for q in c["proposals"]], [1, 2, 3, 4])

    def test_validator_nash_condition(self):
        cw.chromatic_setup("pigou", 100, seed=6)
        quiet(cw.generate_proposals)
        quiet(cw.coordinate_proposals, [[1]])
        v, _ = quiet(cw.validate_proposals, [
            {"id": "eq", "counts": [100, 0]},
            {"id": "eq2", "counts": [99, 1]},
            {"id": "opt", "counts": [50, 50]},
            {"id": "near", "counts": [95, 5]},
            {"id": "bad", "counts": [50, 40]},
            {"id": "liar", "counts": [50, 50], "social_cost": 0.1},
        ])
        by = {q["id"]: q for q in v["proposals"]}
        self.assertTrue(by["eq"]["is_nash"] and by["eq2"]["is_nash"])
        self.assertFalse(by["opt"]["is_nash"])
        self.assertFalse(by["near"]["is_nash"])  # an agent on road2 saves 0.04
        self.assertAlmostEqual(by["near"]["regret"], 0.04)
        self.assertEqual(by["opt"]["deviation"], {"from": "road2", "to": "road1"})
        self.assertAlmostEqual(by["opt"]["regret"], 1 - 0.51)
        self.assertFalse(by["bad"]["well_formed"])
        self.assertFalse(by["liar"]["cost_ok"])
        self.assertTrue(by["opt"]["cost_ok"])
        self.assertEqual(sorted(v["valid"]), ["eq", "eq2"])
        self.assertTrue(v["nash_found"])
        self.assertEqual(v["walk"]["nash"]["social_cost"], 1.0)  # the worst equilibrium
        self.assertAlmostEqual(v["walk"]["poa_estimate"], 4 / 3)

    def test_braess_validator(self):
        cw.chromatic_setup("braess", 90, seed=6)
        quiet(cw.generate_proposals)
        quiet(cw.coordinate_proposals, [[1, 1, 1]])
        v, _ = quiet(cw.validate_proposals, [[0, 0, 90], [45, 45, 0], [30, 30, 30]])
        self.assertEqual([q["is_nash"] for q in v["proposals"]], [True, False, False])

    def test_walk_estimates_poa(self):
        for game in ("pigou", "braess"):
            cw.chromatic_setup(game, 1000, seed=7)
            r, out = quiet(cw.run_walk, 40)
            self.assertEqual(len(out.splitlines()), 120)
            w = r["walk"]
            self.assertIsNotNone(w["nash"], game)
            self.assertLess(abs(w["nash"]["social_cost"] - r["exact"]["nash"]), 0.02)
            self.assertLess(abs(w["best"]["social_cost"] - r["exact"]["optimum"]), 0.02)
            self.assertLess(abs(w["poa_estimate"] - 4 / 3), 0.03)
            self.assertTrue(r["gf3"]["balanced"])


if __name__ == "__main__":
    unittest.main()

"""scoring.star, run as Python: the file is kept valid Python for exactly this."""

import os
import unittest

from tests.helpers import CHALLENGE_DIR


def load_score():
    path = os.path.join(CHALLENGE_DIR, "scoring.star")
    with open(path, encoding="utf-8") as f:
        source = f.read()
    namespace = {}
    exec(compile(source, path, "exec"), namespace)  # noqa: S102 - our own file
    return namespace["score"]


class ScoringTest(unittest.TestCase):
    def setUp(self):
        self.score = load_score()

    def test_pnl_in_basis_points(self):
        gt = {"entry_price": 100.0, "resolved_price": 100.2, "profit": 0.002}
        self.assertAlmostEqual(self.score({"value": 0.5}, gt)["value"], 10.0)
        self.assertAlmostEqual(self.score({"value": -1.0}, gt)["value"], -20.0)
        self.assertEqual(self.score({"value": 0.0}, gt)["value"], 0.0)

    def test_positions_are_clamped(self):
        gt = {"entry_price": 100.0, "resolved_price": 101.0, "profit": 0.01}
        self.assertAlmostEqual(self.score({"value": 50}, gt)["value"], 100.0)
        self.assertAlmostEqual(self.score({"value": -50}, gt)["value"], -100.0)

    def test_zero_entry_price_fails(self):
        result = self.score({"value": 1.0}, {"entry_price": 0.0, "profit": 0.0})
        self.assertFalse(result["success"])
        self.assertTrue(result["failed_reason"])


if __name__ == "__main__":
    unittest.main()

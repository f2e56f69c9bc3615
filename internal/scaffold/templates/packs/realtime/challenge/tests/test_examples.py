"""The example models: valid output, sensible direction, and the interface the runner uses."""

import filecmp
import math
import os
import unittest

from tests.helpers import EXAMPLES, EXAMPLES_DIR, PACKAGE_DIR, candles, load_example, model_class, wave


class ExampleModelsTest(unittest.TestCase):
    def models(self):
        for name in EXAMPLES:
            with self.subTest(example=name):
                yield name, model_class(load_example(name))()

    def test_there_are_three_examples(self):
        self.assertEqual(EXAMPLES, ["contrarian", "mean_reversion", "momentum"])

    def test_each_example_carries_the_challenge_cruncher(self):
        # A submission directory is self-contained: main.py plus an unchanged cruncher.py.
        for name in EXAMPLES:
            with self.subTest(example=name):
                copy = os.path.join(EXAMPLES_DIR, name, "cruncher.py")
                self.assertTrue(
                    filecmp.cmp(copy, os.path.join(PACKAGE_DIR, "cruncher.py"), shallow=False),
                    f"{copy} differs from the challenge's cruncher.py; copy it again",
                )

    def test_no_data_means_no_position(self):
        for name, model in self.models():
            self.assertEqual(model.predict("BTCUSDT", 60, 15), {"value": 0.0})

    def test_flat_market_means_no_position(self):
        for name, model in self.models():
            model.feed_update(candles([100.0] * 30))
            self.assertEqual(model.predict("BTCUSDT", 60, 15), {"value": 0.0})

    def test_output_is_a_bounded_float(self):
        for name, model in self.models():
            for closes in (wave(120), wave(120, drift=0.2), wave(120, drift=-0.2), wave(5), [1e6, 1.0, 1e6]):
                model.feed_update(candles(closes))
                out = model.predict("BTCUSDT", 60, 15)
                self.assertEqual(set(out), {"value"})
                self.assertIsInstance(out["value"], float)
                self.assertTrue(math.isfinite(out["value"]))
                self.assertLessEqual(abs(out["value"]), 1.0)

    def test_direction_after_a_jump_up(self):
        closes = wave(60) + [110.0]
        want = {"contrarian": -1, "mean_reversion": -1, "momentum": 1}
        for name, model in self.models():
            model.feed_update(candles(closes))
            value = model.predict("BTCUSDT", 60, 15)["value"]
            self.assertEqual(math.copysign(1, value), want[name], f"{name}: {value}")
            self.assertGreater(abs(value), 0.1)

    def test_tick_is_feed_update(self):
        for name, model in self.models():
            model.tick(candles(wave(60) + [110.0]))
            self.assertNotEqual(model.predict("BTCUSDT", 60, 15)["value"], 0.0)

    def test_symbols_are_kept_apart(self):
        for name, model in self.models():
            model.feed_update(candles(wave(60) + [110.0], symbol="BTCUSDT"))
            model.feed_update(candles([50.0] * 30, symbol="ETHUSDT"))
            self.assertEqual(model.predict("ETHUSDT", 60, 15), {"value": 0.0})
            self.assertNotEqual(model.predict("BTCUSDT", 60, 15)["value"], 0.0)


if __name__ == "__main__":
    unittest.main()

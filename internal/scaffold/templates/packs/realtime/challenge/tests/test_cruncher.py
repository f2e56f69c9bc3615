"""The base class: data keeping and output checks every model relies on."""

import unittest

from tests.helpers import candles, cruncher


class Fixed(cruncher.ModelBaseClass):
    def __init__(self, value):  # no super().__init__(): must still work
        self.value = value

    def _predict(self, subject, resolve_horizon_seconds, step_seconds):
        return {"value": self.value}


class ModelBaseClassTest(unittest.TestCase):
    def test_predict_needs_an_implementation(self):
        with self.assertRaises(NotImplementedError):
            cruncher.ModelBaseClass().predict("BTCUSDT", 60, 15)

    def test_closes_per_symbol(self):
        model = Fixed(0.0)
        self.assertEqual(model.closes("BTCUSDT"), [])
        model.feed_update(candles([1.0, 2.0], symbol="BTCUSDT"))
        self.assertEqual(model.closes("BTCUSDT"), [1.0, 2.0])
        self.assertEqual(model.closes("BTC"), [1.0, 2.0], "with one symbol, any subject reads it")
        model.feed_update(candles([3.0], symbol="ETHUSDT"))
        self.assertEqual(model.closes("ETHUSDT"), [3.0])
        self.assertEqual(model.closes("BTC"), [])

    def test_predict_returns_a_float_value(self):
        self.assertEqual(Fixed(1).predict("BTCUSDT", 60, 15), {"value": 1.0})
        self.assertIsInstance(Fixed(1).predict("BTCUSDT", 60, 15)["value"], float)

    def test_predict_refuses_non_finite_values(self):
        for bad in (float("nan"), float("inf")):
            with self.subTest(value=bad), self.assertRaises(ValueError):
                Fixed(bad).predict("BTCUSDT", 60, 15)

    def test_volatility(self):
        self.assertEqual(cruncher.volatility([]), 0.0)
        self.assertEqual(cruncher.volatility([100.0, 100.0, 100.0]), 0.0)
        self.assertAlmostEqual(cruncher.volatility([100.0, 101.0, 100.0]), 0.00995, places=5)


if __name__ == "__main__":
    unittest.main()

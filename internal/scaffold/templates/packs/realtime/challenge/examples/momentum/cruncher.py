"""The starter-challenge model interface. Every submission subclasses ModelBaseClass.

CrunchDAO's model runner (and crunch-node's development host) looks for the first subclass
of `cruncher.ModelBaseClass` among the modules of a submission's directory, creates it with
no arguments and then calls:

* feed_update(data) on every feed tick, with the latest market data, oldest candle first:
      {"symbol": "BTCUSDT", "asof_ts": 1700000000,
       "candles_1m": [{"ts": ..., "open": ..., "high": ..., "low": ..., "close": ..., "volume": ...}, ...]}
* predict(subject, resolve_horizon_seconds, step_seconds) for every scheduled prediction.
  It returns {"value": v}: a position in [-1, 1], positive when you expect the price of
  `subject` to rise over the next resolve_horizon_seconds, negative for a fall; the size is
  your conviction. The score is v x (relative price move) x 10000, positions clamped to
  [-1, 1].
* tick(data): an older name of feed_update, kept for older games.

A submission is a directory with this file, unchanged, next to your own main.py, which is the
layout the model runner expects. Implement _predict (or override predict); feed_update keeps
the latest data per symbol and closes(subject) returns the close prices.
"""

import logging
import math

logger = logging.getLogger("cruncher")


class ModelBaseClass:
    """Base class of starter-challenge models."""

    def tick(self, data):
        """Older name of feed_update."""
        self.feed_update(data)

    def feed_update(self, data):
        """Keeps the latest market data per symbol. Override to keep more (call super())."""
        symbol = data.get("symbol") or data.get("subject") or "_default"
        self._latest()[symbol] = data
        logger.debug("feed_update %s: %d candles", symbol, len(data.get("candles_1m") or []))

    def predict(self, subject, resolve_horizon_seconds, step_seconds):
        """Returns {"value": position in [-1, 1]} for subject over the horizon."""
        prediction = self._predict(subject, resolve_horizon_seconds, step_seconds)
        value = float(prediction["value"])
        if not math.isfinite(value):
            raise ValueError(f"prediction for {subject} is not a finite number: {value}")
        prediction["value"] = value
        return prediction

    def _predict(self, subject, resolve_horizon_seconds, step_seconds):
        raise NotImplementedError("implement _predict(subject, resolve_horizon_seconds, step_seconds)")

    def _get_data(self, subject):
        """The latest feed_update data for subject; with one symbol only, that one."""
        latest = self._latest()
        if subject in latest:
            return latest[subject]
        if len(latest) == 1:
            return next(iter(latest.values()))
        return None

    def closes(self, subject):
        """Close prices of subject, oldest first; [] before the first feed_update."""
        data = self._get_data(subject) or {}
        return [float(c["close"]) for c in data.get("candles_1m") or [] if c.get("close") is not None]

    def _latest(self):
        # Created on first use, so subclasses need not call super().__init__().
        try:
            return self.__latest
        except AttributeError:
            self.__latest = {}
            return self.__latest


def volatility(closes):
    """Standard deviation of the one-step relative returns of closes (0 with too few)."""
    returns = [(b - a) / a for a, b in zip(closes, closes[1:]) if a]
    if len(returns) < 2:
        return 0.0
    mean = sum(returns) / len(returns)
    return math.sqrt(sum((r - mean) ** 2 for r in returns) / len(returns))

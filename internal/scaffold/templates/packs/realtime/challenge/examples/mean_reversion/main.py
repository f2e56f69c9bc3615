"""Mean reversion: bets that the price returns to its recent average.

The position is the distance of the last close from the mean of the last WINDOW closes, in
units of recent volatility, squashed into [-1, 1] and negated: above the mean means short.
"""

import math

from cruncher import ModelBaseClass, volatility

WINDOW = 20
HISTORY = 60


class MeanReversionTracker(ModelBaseClass):
    def _predict(self, subject, resolve_horizon_seconds, step_seconds):
        closes = self.closes(subject)[-HISTORY:]
        sigma = volatility(closes)
        if len(closes) < 3 or sigma == 0:
            return {"value": 0.0}
        recent = closes[-WINDOW:]
        mean = sum(recent) / len(recent)
        deviation = (closes[-1] - mean) / mean
        return {"value": -math.tanh(deviation / (sigma * math.sqrt(len(recent))))}

"""Contrarian: bets against the very last move.

The position is the last one-step return in units of recent volatility, squashed into
[-1, 1] and negated, at half size: a jump up means a small short.
"""

import math

from cruncher import ModelBaseClass, volatility

HISTORY = 60
SIZE = 0.5


class ContrarianTracker(ModelBaseClass):
    def _predict(self, subject, resolve_horizon_seconds, step_seconds):
        closes = self.closes(subject)[-HISTORY:]
        sigma = volatility(closes)
        if len(closes) < 3 or sigma == 0:
            return {"value": 0.0}
        move = (closes[-1] - closes[-2]) / closes[-2]
        return {"value": -SIZE * math.tanh(move / sigma)}

"""Momentum: bets that the recent trend continues.

The position is the return over the last LOOKBACK steps, in units of recent volatility,
squashed into [-1, 1]: a rise means long.
"""

import math

from cruncher import ModelBaseClass, volatility

LOOKBACK = 5
HISTORY = 60


class MomentumTracker(ModelBaseClass):
    def _predict(self, subject, resolve_horizon_seconds, step_seconds):
        closes = self.closes(subject)[-HISTORY:]
        sigma = volatility(closes)
        if len(closes) < 3 or sigma == 0:
            return {"value": 0.0}
        back = min(LOOKBACK, len(closes) - 1)
        past = closes[-1 - back]
        move = (closes[-1] - past) / past
        return {"value": math.tanh(move / (sigma * math.sqrt(back)))}

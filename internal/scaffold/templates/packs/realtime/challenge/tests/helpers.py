"""Shared test helpers: loading the examples and fabricating market data."""

import importlib.util
import math
import os
import sys

CHALLENGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE_DIR = os.path.join(CHALLENGE_DIR, "starter_challenge")
EXAMPLES_DIR = os.path.join(CHALLENGE_DIR, "examples")
EXAMPLES = sorted(
    name for name in os.listdir(EXAMPLES_DIR) if os.path.isfile(os.path.join(EXAMPLES_DIR, name, "main.py"))
)

# `cruncher` resolves to the challenge's own copy, the one the examples must match.
if PACKAGE_DIR not in sys.path:
    sys.path.insert(0, PACKAGE_DIR)

import cruncher  # noqa: E402


def load_example(name):
    """Imports examples/<name>/main.py under a unique module name."""
    path = os.path.join(EXAMPLES_DIR, name, "main.py")
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def model_class(module):
    """The example's model class: the subclass of ModelBaseClass defined in it."""
    classes = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, cruncher.ModelBaseClass) and obj is not cruncher.ModelBaseClass
    ]
    assert len(classes) == 1, f"{module.__name__} defines {len(classes)} model classes"
    return classes[0]


def candles(closes, symbol="BTCUSDT", start=1_700_000_000, step=60):
    """feed_update data as crunch-node sends it."""
    rows = [
        {"ts": start + i * step, "open": c, "high": c, "low": c, "close": c, "volume": 1.0}
        for i, c in enumerate(closes)
    ]
    return {"symbol": symbol, "asof_ts": start + (len(closes) - 1) * step, "candles_1m": rows}


def wave(n, base=100.0, amplitude=0.5, drift=0.0):
    """A wiggly price series, so volatility is never zero."""
    return [base + amplitude * math.sin(i * 0.7) + drift * i for i in range(n)]

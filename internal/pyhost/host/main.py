"""crunch-node's development model host: serves one participant's Python model over
CrunchDAO's model-runner gRPC protocol. See crunchnode_pyhost/server.py.

Usage: python3 main.py --code-dir DIR --port N [--host H] [--base-class M.Class] [--path DIR]...
"""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))

# Python put this directory first on sys.path. The host's own modules are imported from it
# (and from pb/, the generated protocol code) and then it is taken off again, so that a
# participant's main.py or helper modules never resolve to the host's files.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path[0:0] = [_HERE, os.path.join(_HERE, "pb")]

from crunchnode_pyhost import server  # noqa: E402

del sys.path[0:2]

if __name__ == "__main__":
    code = server.main(sys.argv[1:])
    # Exit now rather than wait at interpreter shutdown for a model call that ignores the
    # stop (a thread stuck in participant code would otherwise keep the process alive).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

"""crunch-node's development model host (see server.py)."""

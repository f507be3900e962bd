"""Deciding and doing: the pure planner, and the thin shell that executes its plans."""

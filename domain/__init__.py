"""fleetsync's model: values, events, aggregates, the pure planner and ports.

Nothing in this package does I/O; adapters call into it, never the reverse.
"""

"""Fault tests: the relay client against a fake relay that misbehaves on purpose."""

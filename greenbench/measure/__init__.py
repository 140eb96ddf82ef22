"""Measuring: the ladder spec (zoo), devices, the window protocol, the runner, records."""

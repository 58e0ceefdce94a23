"""Loads the harness pytest plugin and the world-building fixtures; nothing else."""

pytest_plugins = ["harness.plugin", "fixtures.plugin"]

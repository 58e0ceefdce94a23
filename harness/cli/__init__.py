"""The `iam-harness` command: a thin front end over the pytest plugin and the engine."""

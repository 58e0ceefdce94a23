"""The project's own tests: unit tests of harness and app, and the fault matrix."""

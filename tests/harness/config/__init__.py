"""Tests of harness.config: the target config file."""

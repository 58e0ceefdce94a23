"""Tests of the reference IAM app, against a real PostgreSQL."""

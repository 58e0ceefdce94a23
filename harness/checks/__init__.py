"""The checks: the catalogue of questions the report answers, and the registered judges that turn exchanges
and state into typed findings."""

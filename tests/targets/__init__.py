"""Small targets other than the reference app, for proving the harness works on targets it has never seen."""

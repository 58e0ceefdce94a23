"""The conformance scenarios: pytest modules, each test marked with the checks it decides."""

"""The report: one typed model of a run's answers and findings, and one writer per format (JSON, Markdown,
JUnit XML, the terminal)."""

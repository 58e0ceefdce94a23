"""The target config file: pydantic models of what the harness may know of a target beyond its schema and
pages, read and validated once, with errors that name the file, the table and the field."""

"""iam-harness: a security conformance harness for multi-tenant apps that sign users in with Clerk."""

__version__ = "0.1.0"

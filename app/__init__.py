"""The reference IAM app: a small multi-tenant CRM that signs users in with Clerk.

Build the ASGI app with `app.main.create_app(settings)`; run it with `python -m app serve`.
"""

__all__: list[str] = []

"""Clerk, as the harness plays it: an issuer with RSA keys and a JWKS, session tokens minted as Clerk mints
them, the attack catalogue of forged tokens, svix-signed webhooks, and the key store the commands share."""

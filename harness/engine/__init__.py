"""The engine: the target's schema read once, requests scheduled and sent through one httpx transport, and
every exchange handed on as typed data. It decides nothing; the checks judge what it saw."""

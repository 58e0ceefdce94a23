"""The JSON API: dependencies (`deps`), bodies (`schemas`) and one router per resource (`routes`)."""

__all__: list[str] = []

"""Authentication in three layers: token (`token`), identity (`identity`), policy (`policy`)."""

__all__: list[str] = []

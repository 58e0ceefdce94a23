"""A real browser (Playwright + Chromium) that signs a principal in and records every navigation."""

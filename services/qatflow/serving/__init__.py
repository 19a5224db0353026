"""The HTTP inference service: one FastAPI app, a backend per runtime."""

"""The bridge: FastAPI app with management routes, the plugin proxy, SSE, auth, portal."""

"""Serving: an HTTP search service (app.py) and its web page (static/), the demo model (demo.py)."""

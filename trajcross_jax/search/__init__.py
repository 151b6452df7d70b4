"""Search: embed a gallery (gallery.py), index it (index.py), query it (query.py)."""

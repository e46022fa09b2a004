"""``mailhunt serve``: the case in a browser (FastAPI and Jinja2, rendered on the server; no CDN, no build step)."""

from mailhunt.web.app import create_app

__all__ = ["create_app"]

"""The board's web app (``publisher web``): server-rendered pages with htmx for the editorial
loop, and a JSON API under /api/v1, on the same queue the daemon reads."""

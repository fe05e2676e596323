"""The HTTP feature server. Reads the manifest and the online store; never compiles, never imports Jinja."""

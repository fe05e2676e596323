"""The online side: the key/value byte format, the store interface, the writer (post-hook) and the reader."""

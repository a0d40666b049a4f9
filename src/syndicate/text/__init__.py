"""Text and HTML hygiene, a leaf: tidy (what XML can carry, tag keys), sanitize (untrusted HTML), slugs.

Imports nothing of ours; everything above may import it.
"""

"""The demo corpus: a realistic, deterministic site to try Syndicate on (`syndicate demo-data`).

Imports only the domain and the text leaves; the command line uses it.
"""

from syndicate.demo.corpus import generate_corpus

__all__ = ["generate_corpus"]

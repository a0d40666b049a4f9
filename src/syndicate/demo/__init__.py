"""The demo corpus: a realistic, deterministic site to try Syndicate on (`syndicate demo-data`)."""

from syndicate.demo.corpus import generate_corpus

__all__ = ["generate_corpus"]

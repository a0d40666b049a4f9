"""Digest newsletters: editions gathered from Editor's Choice and Most Viewed, rendered as email."""

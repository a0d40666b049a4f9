"""Observing the service, a leaf: logs (structured `event key=value` lines), metrics, progress bars.

Imports nothing of ours; everything above may import it.
"""

"""Digest newsletters: editions gathered from Editor's Choice and Most Viewed, rendered as email.

May import the feeds (what is visible, section names), the store, the settings and the leaves;
never the sources, subscribers, delivery, sending, the web, the schedule or the command line.
"""

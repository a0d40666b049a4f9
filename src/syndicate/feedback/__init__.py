"""Feedback: what comes back about sent mail (bounces, complaints, deliveries) and what it does.

model holds the values every source produces (a `Feedback` per recipient a report tells of,
with the clues that name the message); record attributes one to its subscriber and edition,
stores it once and suppresses the address when the rules say so. Reports arrive as mail (read
from a file, a Maildir or an IMAP mailbox) or as providers' webhooks (the web's). May import
subscribers, the store, settings and the leaves; never delivery, send, web, service or cli.
"""

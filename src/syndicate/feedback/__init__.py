"""Feedback: what comes back about sent mail (bounces, complaints, deliveries) and what it does.

model holds the values every source produces (a `Feedback` per recipient a report tells of,
with the clues that name the message); record attributes one to its subscriber and edition,
stores it once and suppresses the address when the rules say so. reports reads one report
received as mail (dsn, arf, nonstandard and autoreply: one module a format; classify says
hard or soft), intake takes it in, and report_files reads messages from files. Reports
arrive as mail (read from a file, a Maildir or an IMAP mailbox) or as providers' webhooks
(the web's). May import subscribers, the store, settings and the leaves; never delivery,
send, web, service or cli.
"""

"""Mail providers' event webhooks at /webhooks/ses, postmark, mailgun and sendgrid.

Each provider's module checks a request the way that provider signs it and reads its events
into `syndicate.feedback` values; `receiving` is the request's path through them (the secret
set or 404, the body bounded, 401/403 for a request that is not the provider's, 400 for one
that cannot be read, 200 once every event is recorded); `payload` reads JSON fields naming
the one at fault. Amazon's certificates and subscription links are fetched through one
injectable transport (`Outside`), so tests can stand in for Amazon.
"""

"""The subscription pages over HTTP: subscribe, confirm, preferences, unsubscribe.

The Starlette side of the subscribers: `app` (the handlers the server mounts at /subscribe),
`pages` (rendering a page in the reader's language, and the CSRF token its forms carry) and
`notices` (the short answers). What they do to subscribers is `syndicate.subscribers`, which
knows nothing of HTTP; they may import it, the store, the settings, localisation and
`web.security`.
"""

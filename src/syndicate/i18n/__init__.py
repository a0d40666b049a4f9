"""Localisation, a leaf: babel catalogs, local dates and digits, language names; the Jinja environment.

catalogs holds the translations, local_date and language_name; templating the one Jinja
environment. The catalogs themselves stay in src/syndicate/locale (babel.cfg, `make messages`).
Imports nothing of ours; everything above may import it.
"""

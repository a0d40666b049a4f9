"""The domain, a leaf: what the site publishes (model) and the digest kinds and periods.

model holds articles, tags, topics, picks, views and statuses as plain values; periods holds
one table for the digest kinds and one for the Most Viewed periods. Imports only the other
leaves (i18n for the tables' translated names); everything above may import it.
"""

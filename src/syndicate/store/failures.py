"""Telling a failing store from a failing record.

A record can make the database refuse a statement (a value out of range, a duplicate key, a
row too big): that record is rejected and ingest goes on. A store that is unreachable, locked
for too long, full, read-only or shutting down refuses every record alike: rejecting them one by
one would only mislabel good input, so the work stops and is retried later.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

# SQLite primary result codes that speak of the database, not of a statement's values:
# BUSY, LOCKED, NOMEM, READONLY, INTERRUPT, IOERR, CORRUPT, FULL, CANTOPEN, PROTOCOL, NOTADB.
_SQLITE_STORE_CODES = {5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 26}
# PostgreSQL SQLSTATE classes of the same kind: connection exception, insufficient resources,
# operator intervention, system error, transaction rollback (serialization, deadlock),
# internal error; and lock_not_available, read_only_sql_transaction.
_POSTGRES_STORE_CLASSES = {"08", "53", "57", "58", "40", "XX"}
_POSTGRES_STORE_STATES = {"55P03", "25006"}


def is_store_failure(error: BaseException) -> bool:
    """True when `error` says the store failed as a whole, rather than refusing one record."""
    if not isinstance(error, DBAPIError):
        return False  # an error in Python (a value the driver cannot bind, say) is the record's
    if error.connection_invalidated:
        return True
    original = error.orig
    sqlstate = getattr(original, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate:
        return sqlstate[:2] in _POSTGRES_STORE_CLASSES or sqlstate in _POSTGRES_STORE_STATES
    code = getattr(original, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in _SQLITE_STORE_CODES
    # A driver that says no more: connection trouble is the store's.
    return isinstance(error, OperationalError | InterfaceError)

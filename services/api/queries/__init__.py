"""The API's SQL, one module per resource. Route modules call these; the benchmark runs the same statements.

Every value is a bound parameter; identifiers (table and column names) only come from the fixed maps in
these modules and go through :mod:`psycopg.sql`.
"""

"""Storage: connections, ordered migrations, and which path (plain PostgreSQL or TimescaleDB) is active."""

"""The MQTT topic and payload contract that devices, simulators and ingest all keep.

Everything here is pure: no broker, no database.
"""

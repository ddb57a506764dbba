"""The local two-region lab: a simulation of the DR setup around the real service code.

Both regions run in this process on moto; the lab simulates what no emulator offers - global
table replication, Route 53 health checks and failover DNS, and Lambda's event sources.
"""

//! Path tests: traceroute with Paris flow ids, MDA multipath discovery, PMTU.

//! Agent-to-agent tests: STAMP (RFC 8762) sender and reflector.

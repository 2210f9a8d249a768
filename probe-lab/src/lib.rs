//! probe-lab: the development testbed (network namespaces, topologies, impairment hop).

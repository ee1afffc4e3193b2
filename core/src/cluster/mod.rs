//! Cluster state: list/watch of Nodes and Pods, and node address resolution.

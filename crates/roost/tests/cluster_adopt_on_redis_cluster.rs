//! The tests of `cluster_adopt.rs`, run against a private 3-primary Redis
//! Cluster (`redis+cluster://` seeds) instead of one redis-server: the same
//! test code, included as a module whose path tells it which Redis to start.

#[path = "cluster_adopt.rs"]
mod on_redis_cluster;
